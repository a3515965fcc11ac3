"""The rater page on a laptop screen (Chromium at 1366x768): both answers start at the same height, every control of a
judgment is in view without scrolling for two-paragraph answers, the conversation box fits a one-line prompt,
A and B put the rater in the improve box, and an empty pool shows a done state."""

import contextlib

import pytest
from sqlalchemy import select

from collect.serve import ServeArguments, build_server
from collect.store import Candidate, Prompt
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, log_in
from tests.support.campaigns import make_store
from tests.support.serving import serving

playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs `pip install playwright`")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="the browser test needs Debian's Chromium: `apt-get install -y chromium`"
)

LAPTOP = {"width": 1366, "height": 768}
PARAGRAPH = (
    "Rain forms when water vapour in rising air cools and condenses on tiny particles, making cloud droplets. "
    "The droplets bump into each other and merge until they are heavy enough to fall, and in colder clouds "
    "ice crystals grow at the expense of the droplets around them before melting on the way down."
)
LONG = f"{PARAGRAPH}\n\n{PARAGRAPH}"  # two paragraphs
SHORT = "Water vapour condenses into droplets that grow until they fall."
# Every control of a judgment: the scale, both bad, rationale, flags, skip and undo.
CONTROLS = [f"#plumb-key-{key}" for key in "12345670"] + [
    "#plumb-rationale textarea",
    "#plumb-flags input[type=checkbox]",
    "#plumb-key-s",
    "#plumb-key-u",
]


BADGE_WATCH = """() => {
  window.__plumb_badges = [];
  const seen = (element) => element && element.checkVisibility({opacityProperty: true, visibilityProperty: true});
  new MutationObserver((changes) => {
    for (const change of changes) for (const node of change.addedNodes) {
      const text = (node.textContent || "").trim();
      const element = node.nodeType === 1 ? node : node.parentElement;
      if (/processing|queue/i.test(text) && text.length < 60 && seen(element)) window.__plumb_badges.push(text);
    }
  }).observe(document.getElementById("plumb-task").parentElement, {childList: true, subtree: true});
}"""


@contextlib.contextmanager
def laptop_page(tmp_path, prompt: list[dict] | None = None):
    """(A signed-in Playwright page at 1366x768, the app's URL, the URLs the page requested) on a one-task campaign
    whose answers are a short and a two-paragraph one."""
    url = f"sqlite:///{tmp_path / 'collect.sqlite'}"
    engine, sessions, _ = make_store(url, prompts=1, allow_edits=True)
    with sessions.begin() as session:
        for candidate, text in zip(session.scalars(select(Candidate).order_by(Candidate.id)), (SHORT, LONG)):
            candidate.completion = [{"role": "assistant", "content": text}]
        if prompt is not None:
            session.scalars(select(Prompt)).one().messages = prompt
    with serving(build_server(ServeArguments(db=url))) as base_url, playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=LAPTOP)
            requests = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(base_url + "/")
            log_in(page, "ana")
            yield page, base_url, requests
        finally:
            browser.close()
    engine.dispose()


def text_top(page, slot: str) -> float:
    """Where the first line of response `slot`'s text starts on the page."""
    return page.locator(f"#plumb-response-{slot} p").first.bounding_box()["y"]


def test_the_rater_page_fits_a_laptop_screen_and_ends_in_a_done_state(tmp_path):
    with laptop_page(tmp_path) as (page, base_url, requests):
        responses = page.locator("#plumb-response-a, #plumb-response-b")
        playwright.expect(responses.filter(has_text="Rain forms")).to_have_count(1)  # shown in a random order
        playwright.expect(responses.filter(has_text="Water vapour condenses into")).to_have_count(1)
        page.screenshot(path=str(tmp_path / "rate-1366x768.png"))
        assert abs(text_top(page, "a") - text_top(page, "b")) < 3  # the short answer is not centred lower
        assert page.evaluate("window.scrollY") == 0
        for selector in CONTROLS:
            box = page.locator(selector).first.bounding_box()
            assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= LAPTOP["height"], selector
        assert page.locator("#plumb-prompt").bounding_box()["height"] < 160  # a one-line prompt, no blank box

        # Gradio's "processing" and "queue" badges flashed inside the answer boxes at every action.
        page.evaluate(BADGE_WATCH)
        page.keyboard.press("a")  # start from A's text: the rater is now typing in the box
        edit_box = page.locator("#plumb-edit textarea")
        playwright.expect(edit_box).to_be_focused()
        playwright.expect(edit_box).not_to_have_value("")
        started = edit_box.input_value()
        page.keyboard.type("b3")  # text, not "start from B" and not an answer
        playwright.expect(edit_box).to_have_value(started + "b3")
        page.keyboard.press("Escape")
        page.keyboard.press("4")
        done = page.locator("#plumb-done")
        playwright.expect(done).to_contain_text("You are done for now")
        playwright.expect(page.locator("#plumb-task")).to_be_hidden()
        playwright.expect(page.locator("#plumb-progress")).to_contain_text("0 left for you")
        assert page.evaluate("window.__plumb_badges") == []
        # Nothing from another host: no font server (whose fallback drew bold capitals lighter), no CDN.
        assert [url for url in requests if not url.startswith(base_url)] == []
        page.screenshot(path=str(tmp_path / "done-1366x768.png"))
        page.keyboard.press("u")  # the undo is still at hand: the task comes back
        playwright.expect(page.locator("#plumb-task")).to_be_visible()
        playwright.expect(done).to_be_hidden()


def test_a_multi_turn_conversation_shows_whole_with_nothing_over_its_first_turn(tmp_path):
    turns = [  # taller than the old fixed 260 px box, shorter than the limit
        {"role": "user", "content": "What makes rain? " + PARAGRAPH},
        {"role": "assistant", "content": PARAGRAPH},
        {"role": "user", "content": "And why is it sometimes snow instead? " + SHORT},
    ]
    with laptop_page(tmp_path, prompt=turns) as (page, _, _):
        box = page.locator("#plumb-prompt")
        playwright.expect(box).to_contain_text("sometimes snow")
        first = box.get_by_text("What makes rain?")
        # The label sat over the first turn of a conversation: the first turn's own text is what shows there.
        covering = page.evaluate(
            """([x, y]) => document.elementFromPoint(x, y).textContent""",
            [first.bounding_box()["x"] + 4, first.bounding_box()["y"] + first.bounding_box()["height"] / 2],
        )
        assert "What makes rain?" in covering
        last, frame = box.get_by_text("sometimes snow").bounding_box(), box.bounding_box()
        # Every turn in view, none cut off: the fixed box scrolled to the end and hid the question's start.
        assert frame["y"] <= first.bounding_box()["y"]
        assert last["y"] + last["height"] <= frame["y"] + frame["height"]
