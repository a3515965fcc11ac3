"""The rater page in a real browser: Playwright drives Debian's Chromium, headless, on 127.0.0.1.

Logs in, judges with the keyboard only, undoes one judgment, ranks a set of three with a
tie, checks the store, and checks that HTML in a model output shows as text and runs nothing. Needs `/usr/bin/chromium`
(`apt-get install -y chromium`) and the `playwright` package; Playwright's own browser
download does not work on these machines, so it is never used.
"""

import contextlib
import re

import pytest

from collect.serve import ServeArguments, build_server
from tests.support.attacks import ATTACK, TRICKS
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, log_in
from tests.support.campaigns import add_attack_task, judgments_of, make_store
from tests.support.serving import serving

playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs `pip install playwright`")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="the browser test needs Debian's Chromium: `apt-get install -y chromium`"
)


@contextlib.contextmanager
def browser_on_app(tmp_path, *, attack: bool | str = False, **campaign):
    """(Playwright page at the app's login, sessions) on a fresh store; `attack` adds the HTML task (ATTACK or that
    text) last."""
    url = f"sqlite:///{tmp_path / 'collect.sqlite'}"
    engine, sessions, _ = make_store(url, **campaign)
    if attack:
        add_attack_task(sessions, ATTACK if attack is True else attack)
    with serving(build_server(ServeArguments(db=url))) as base_url, playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(base_url + "/")
            yield page, sessions
        finally:
            browser.close()
    engine.dispose()


def press(page, key: str, *, judged_today: int) -> None:
    """Press `key` on the page and wait until the progress line shows the expected count."""
    page.keyboard.press(key)
    playwright.expect(page.locator("#plumb-progress")).to_contain_text(f"{judged_today} judged today")


def test_a_rater_logs_in_and_judges_with_the_keyboard_and_html_runs_nothing(tmp_path):
    with browser_on_app(tmp_path, attack=True, allow_edits=True) as (page, sessions):
        judge_five_with_the_keyboard(page, tmp_path)
        judgments = judgments_of(sessions, "ana")
    assert [j.retracted for j in judgments] == [False, False, True, False, False, False]
    assert [abs(j.preference) if j.preference is not None else "both bad" for j in judgments if not j.retracted] == [
        2,
        "both bad",
        3,
        1,
        3,
    ]
    assert judgments[3].supersedes_id == judgments[2].id  # the re-judgment after undo supersedes the retraction
    edited = judgments[0]  # started from response A's text with the A key, then typed into
    assert edited.edit.startswith("answer ") and edited.edit.endswith(" Shorter, and it cites a source.")
    assert [j.edit for j in judgments[1:]] == [None] * 5
    assert all(j.seconds_spent is not None and j.seconds_spent >= 0 for j in judgments if not j.retracted)


def judge_five_with_the_keyboard(page, tmp_path) -> None:
    """Judge, undo and judge again with keys only; the last task's HTML must show as text and run nothing."""
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, "ana")
    playwright.expect(page.locator("#plumb-key-1")).to_contain_text("1 · A much better")
    playwright.expect(page.get_by_role("tab", name="Rate")).to_be_visible()
    playwright.expect(page.get_by_role("tab", name="Campaign")).to_have_count(0)  # reviewers and admins only

    page.keyboard.press("a")  # start the improved response from response A's text
    edit_box = page.locator("#plumb-edit textarea")
    playwright.expect(edit_box).to_have_value(page.locator("#plumb-response-a").inner_text().strip())
    edit_box.click()
    edit_box.press("End")
    edit_box.type(" Shorter, and it cites a source.")
    page.keyboard.press("2")  # typed into the box: no answer yet
    playwright.expect(edit_box).to_have_value(re.compile(r"source\.2$"))
    edit_box.press("Backspace")
    edit_box.press("Escape")  # leaves the box, so the keys answer again
    press(page, "2", judged_today=1)
    playwright.expect(page.locator("#plumb-message")).to_contain_text("with your improved response")
    playwright.expect(edit_box).to_have_value("")
    press(page, "0", judged_today=2)
    press(page, "u", judged_today=1)
    playwright.expect(page.locator("#plumb-message")).to_contain_text("Undone")
    press(page, "7", judged_today=2)
    press(page, "3", judged_today=3)

    # The last task carries HTML in its prompt and both responses: it must show as typed.
    playwright.expect(page.locator("#plumb-prompt")).to_contain_text('<img src=x onerror="window.__plumb_ran=1">')
    playwright.expect(page.locator("#plumb-prompt")).to_contain_text("<script>window.__plumb_ran=2</script>")
    response = page.locator("#plumb-response-a")
    playwright.expect(response).to_contain_text(
        'Look: <img src=x onerror="window.__plumb_ran=1"> '
        "<script>window.__plumb_ran=2</script> "
        '<a href="javascript:window.__plumb_ran=3">link</a>'
    )
    # The code block is highlighted, and its HTML is code: shown, not rendered.
    playwright.expect(response.locator("pre code")).to_contain_text('print("<b>hi</b>")')
    assert response.locator("pre code .token").count() > 0 and response.locator("b").count() == 0
    assert page.locator('img[src="x"], a[href^="javascript:"], script:text("__plumb_ran")').count() == 0
    page.screenshot(path=str(tmp_path / "rater-page.png"), full_page=True)
    a, b = (page.locator(f"#plumb-response-{slot}").bounding_box() for slot in "ab")
    assert b["x"] > a["x"] + a["width"] / 2 and abs(b["y"] - a["y"]) < 5  # side by side
    page.set_viewport_size({"width": 420, "height": 1100})  # a phone: stacked
    playwright.expect(page.locator("#plumb-response-b")).to_be_visible()
    a, b = (page.locator(f"#plumb-response-{slot}").bounding_box() for slot in "ab")
    assert b["y"] >= a["y"] + a["height"] and abs(b["x"] - a["x"]) < 5
    page.set_viewport_size({"width": 1280, "height": 1100})
    press(page, "1", judged_today=4)
    playwright.expect(page.locator("#plumb-message")).to_contain_text("Nothing left")
    assert page.evaluate("window.__plumb_ran") is None and dialogs == []


def test_a_rater_ranks_three_responses_with_a_tie_and_submits_with_enter(tmp_path):
    with browser_on_app(tmp_path, kind="ranking", policies=("a", "b", "c")) as (page, sessions):
        log_in(page, "ana")
        playwright.expect(page.locator("#plumb-response-c")).to_be_visible()
        playwright.expect(page.locator("#plumb-response-d")).to_be_hidden()  # only the task's three slots show
        page.keyboard.press("Enter")
        playwright.expect(page.locator("#plumb-message")).to_contain_text("Give every response a rank")
        ranks = {"A": 2, "B": 1, "C": 2}  # ties allowed
        shown = {}
        for slot, rank in ranks.items():
            page.locator(f"#plumb-score-{slot}").get_by_label(str(rank), exact=True).check()
            policy = page.locator(f"#plumb-response-{slot.lower()}").inner_text().strip().rsplit(" ", 1)[-1]
            shown[policy] = rank
        page.keyboard.press("Enter")
        playwright.expect(page.locator("#plumb-progress")).to_contain_text("1 judged today")
        (judgment,) = judgments_of(sessions, "ana")
    assert judgment.ranks == [shown["a"], shown["b"], shown["c"]]  # stored in the task's order: policies a, b, c


def test_a_reviewer_has_the_campaign_tab_and_its_overview(tmp_path):
    with browser_on_app(tmp_path) as (page, _):
        log_in(page, "rev")
        page.get_by_role("tab", name="Campaign").click()
        page.get_by_role("button", name="Refresh").click()
        playwright.expect(page.locator("#plumb-overview")).to_contain_text("complete tasks")
        playwright.expect(page.locator("#plumb-quality")).to_contain_text("No pairwise judgments yet")


def test_markdown_tricks_in_a_response_show_as_text_fetch_nothing_and_run_nothing(tmp_path):
    tricks = "\n\n".join(TRICKS).replace("alert(", "window.__plumb_ran=(")
    with browser_on_app(tmp_path, attack=tricks, prompts=0) as (page, _):
        dialogs, requests = [], []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on("request", lambda request: requests.append(request.url))
        log_in(page, "ana")
        response = page.locator("#plumb-response-a")
        playwright.expect(response).to_contain_text("<img src=//evil/x>")
        playwright.expect(response).to_contain_text("<svg/onload=window.__plumb_ran=(1)>")
        # (Gradio's own icons are SVGs: the copy buttons of code blocks.)
        assert page.locator("#plumb-response-a :is(img, script, iframe, svg[onload])").count() == 0
        protocols = page.eval_on_selector_all("#plumb-response-a a[href]", "links => links.map(a => a.protocol)")
        assert set(protocols) <= {"http:", "https:"}  # a script scheme with a space in it is only a relative link
        page.wait_for_timeout(500)  # an image or script would have been requested by now
        assert page.evaluate("window.__plumb_ran") is None and dialogs == []
        assert not [url for url in requests if "evil" in url]


def test_a_refused_answer_keeps_what_the_rater_wrote(tmp_path):
    with browser_on_app(tmp_path, allow_edits=True, rationale="required") as (page, sessions):
        log_in(page, "ana")
        edit_box = page.locator("#plumb-edit textarea")
        edit_box.fill("My own, much better answer.")
        edit_box.press("Escape")
        page.keyboard.press("b")  # "start from B" does not overwrite the rater's own text
        page.keyboard.press("2")  # no rationale: refused, and the edit stays
        playwright.expect(page.locator("#plumb-message")).to_contain_text("asks for a rationale")
        playwright.expect(edit_box).to_have_value("My own, much better answer.")
        page.locator("#plumb-key-2").focus()
        page.get_by_label("Rationale (required)").fill("It answers the question.")
        page.locator("#plumb-key-2").click()
        playwright.expect(page.locator("#plumb-progress")).to_contain_text("1 judged today")
        playwright.expect(edit_box).to_have_value("")  # a new task starts empty
        (judgment,) = judgments_of(sessions, "ana")
    assert (judgment.edit, judgment.rationale) == ("My own, much better answer.", "It answers the question.")
