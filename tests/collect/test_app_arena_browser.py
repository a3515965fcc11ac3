"""The arena tab in a real browser: Chromium (Playwright, headless) battles two policies answering live.

The policies are real: the tiny random Llama of `tiny_policy_dir` (loaded once for both
of its policies) and an OpenAI-compatible server started here on 127.0.0.1 whose answer
carries HTML attack text and names itself. Needs `/usr/bin/chromium` and `playwright`.
"""

import contextlib
import json
import threading
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from collect.app.arena_tab import CONCURRENT_BATTLES, FINISHED, create_arena_tab
from collect.domain.answers import IDENTITY_LEAK
from collect.domain.campaign import as_definition, campaign_from_dict
from collect.serve import ServeArguments, build_server
from collect.store import (
    Assignment,
    Candidate,
    Judgment,
    Policy,
    Task,
    create_campaign,
    create_rater,
    make_engine,
    session_factory,
    upgrade,
)
from collect.store.raters import set_active
from tests.support.attacks import ATTACK
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, log_in
from tests.support.campaigns import PASSWORDS
from tests.support.serving import serving

playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs `pip install playwright`")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="the browser test needs Debian's Chromium: `apt-get install -y chromium`"
)
SELF_NAMING = ATTACK + "\n\nI am Mallory, by the way."
WAIT_MS = 60_000  # a bound for a broken page, not a timing check: the tiny models answer in about a second


def attack_server_app():
    """An OpenAI-compatible chat server that streams `SELF_NAMING` in small SSE chunks, whatever it is asked."""
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    app = FastAPI()

    @app.post("/v1/chat/completions")
    def chat() -> StreamingResponse:
        pieces = [SELF_NAMING[start : start + 7] for start in range(0, len(SELF_NAMING), 7)]
        events = [f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': p}}]})}\n\n" for p in pieces]
        return StreamingResponse(iter(events + ["data: [DONE]\n\n"]), media_type="text/event-stream")

    return app


def gated_server_app(text: str, gate: threading.Event):
    """An OpenAI-compatible chat server that streams the first half of `text`, then waits for `gate`, then the rest."""
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    app = FastAPI()

    def events():
        for part in (text[: len(text) // 2], text[len(text) // 2 :]):
            yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': part}}]})}\n\n"
            gate.wait(WAIT_MS / 1000)
        yield "data: [DONE]\n\n"

    @app.post("/v1/chat/completions")
    def chat() -> StreamingResponse:
        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@contextlib.contextmanager
def arena_page(tmp_path, policies: list[dict]):
    """(Playwright page on the Arena tab, signed in as ana, sessions) for an 'arena' campaign of `policies`."""
    url = f"sqlite:///{tmp_path / 'collect.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    spec = campaign_from_dict({"name": "arena", "policies": policies, "arena_min_seconds": 1})
    with sessions.begin() as session:
        create_campaign(session=session, name="arena", kind="pairwise", definition=as_definition(spec))
        create_rater(session=session, name="ana", role="rater", password=PASSWORDS["ana"])
    dialogs = []
    with (
        serving(build_server(ServeArguments(db=url, campaign="arena"))) as base_url,
        playwright.sync_playwright() as driver,
    ):
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(base_url + "/")
            log_in(page, "ana")
            page.get_by_role("tab", name="Arena").click()
            yield page, sessions
            assert dialogs == []
        finally:
            browser.close()
    engine.dispose()


def battle(page, prompt: str) -> None:
    """Type a prompt, start a battle and wait until voting opens."""
    page.locator("#plumb-arena-prompt textarea").fill(prompt)
    page.locator("#plumb-arena-start").click()
    playwright.expect(page.locator("#plumb-arena-key-a")).to_be_enabled(timeout=WAIT_MS)


def arena_rows(sessions):
    """(task, judgment, candidates with their policy names) of every arena battle in the store."""
    with sessions.begin() as session:
        rows = []
        for task in session.scalars(select(Task).where(Task.source == "arena").order_by(Task.id)):
            judgment = session.scalar(select(Judgment).where(Judgment.task_id == task.id))
            candidates = [
                session.execute(select(Candidate, Policy.name).join(Policy).where(Candidate.id == cid)).one()
                for cid in task.candidate_ids
            ]
            assignment = session.get(Assignment, judgment.assignment_id)
            rows.append((task, judgment, candidates, assignment))
        return rows


def test_a_rater_battles_two_local_policies_votes_and_sees_their_names(tmp_path, tiny_policy_dir):
    # One model at two temperatures, as in the demo campaign: loaded once, serving both policies.
    policies = [
        {"name": f"tiny-t{t}", "model": tiny_policy_dir, "generation": {"do_sample": True, "temperature": t}}
        for t in (0.7, 1.2)
    ]
    with arena_page(tmp_path, policies) as (page, sessions):
        playwright.expect(page.locator("#plumb-arena-key-a")).to_have_text("A · A is better")
        playwright.expect(page.locator("#plumb-arena-key-a")).to_be_disabled()
        battle(page, "Write a haiku about <b>rain</b>.")
        page.keyboard.press("a")  # the arena's A key, not the Rate tab's (hidden) buttons
        playwright.expect(page.locator("#plumb-arena-message")).to_contain_text("Model A was", timeout=WAIT_MS)
        headings = [page.locator(f"#plumb-arena-heading-{side}").inner_text() for side in "ab"]
        playwright.expect(page.locator("#plumb-arena-key-b")).to_be_disabled()  # one vote per battle
        page.locator("#plumb-arena-new").click()
        playwright.expect(page.locator("#plumb-arena-prompt textarea")).to_have_value("")
        playwright.expect(page.locator("#plumb-arena-heading-a")).to_have_text("Model A")
        (task, judgment, candidates, assignment) = arena_rows(sessions)[0]
    names = [name for _, name in candidates]
    assert sorted(names) == ["tiny-t0.7", "tiny-t1.2"]
    assert headings == [f"Model A: {names[0]}", f"Model B: {names[1]}"]  # names shown only after the vote
    assert judgment.preference == 2 and not judgment.both_bad and judgment.flags == []  # A, the first candidate
    assert task.target_overlap == 1 and task.judgment_count == 1 and task.kind == "pairwise"
    assert assignment.state == "judged" and assignment.candidate_order == [0, 1]
    for candidate, name in candidates:
        assert candidate.settings["model"] == tiny_policy_dir and isinstance(candidate.settings["finished"], bool)
        assert candidate.settings["temperature"] == float(name.removeprefix("tiny-t"))
        assert candidate.settings["max_new_tokens"] == 256  # the campaign's arena_max_new_tokens
        assert candidate.completion[0]["role"] == "assistant" and candidate.completion[0]["content"].strip()


def test_html_in_a_streamed_answer_shows_as_text_and_a_self_naming_answer_marks_the_vote(tmp_path, tiny_policy_dir):
    with serving(attack_server_app()) as server_url:
        policies = [{"name": "tiny", "model": tiny_policy_dir}, {"name": "mallory", "model": f"{server_url}/v1"}]
        with arena_page(tmp_path, policies) as (page, sessions):
            battle(page, "Who are you?")
            # Voting may open before the server's answer has all streamed in: wait for its end.
            playwright.expect(page.locator("[id^=plumb-arena-answer-]").filter(has_text="by the way")).to_have_count(1)
            # As typed: safe_markdown's zero-width spaces are invisible.
            texts = "\n".join(page.locator(f"#plumb-arena-answer-{side}").inner_text() for side in "ab")
            texts = texts.replace("\u200b", "")
            assert '<img src=x onerror="window.__plumb_ran=1">' in texts
            assert "<script>window.__plumb_ran=2</script>" in texts
            assert page.locator('img[src="x"], a[href^="javascript:"], [id^=plumb-arena-answer-] script').count() == 0
            page.keyboard.press("x")
            playwright.expect(page.locator("#plumb-arena-message")).to_contain_text("identity leak", timeout=WAIT_MS)
            for key in "abtx":
                playwright.expect(page.locator(f"#plumb-arena-key-{key}")).to_be_disabled()
            assert page.evaluate("window.__plumb_ran") is None
            page.screenshot(path=str(tmp_path / "arena-page.png"), full_page=True)
            ((_, judgment, candidates, _),) = arena_rows(sessions)
    assert judgment.both_bad and judgment.flags == [IDENTITY_LEAK]  # kept in the store, marked
    stored = {name: candidate.completion[0]["content"] for candidate, name in candidates}
    assert stored["mallory"] == SELF_NAMING


def test_a_policy_that_cannot_load_is_reported_on_the_page(tmp_path, tiny_policy_dir):
    policies = [{"name": "tiny", "model": tiny_policy_dir}, {"name": "gone", "model": str(tmp_path / "no-such-model")}]
    with arena_page(tmp_path, policies) as (page, sessions):
        page.locator("#plumb-arena-prompt textarea").fill("hi")
        page.locator("#plumb-arena-start").click()
        playwright.expect(page.locator("#plumb-arena-message")).to_contain_text("could not answer", timeout=WAIT_MS)
        playwright.expect(page.locator("#plumb-arena-message")).to_contain_text("model directory not found")
        playwright.expect(page.locator("#plumb-arena-message")).not_to_contain_text("Traceback")
        playwright.expect(page.locator("#plumb-arena-key-a")).to_be_disabled()
        page.locator("#plumb-arena-new").click()
        playwright.expect(page.locator("#plumb-arena-start")).to_be_enabled()
    assert arena_rows(sessions) == []


def test_a_rater_deactivated_while_the_page_is_open_cannot_start_a_battle(tmp_path, tiny_policy_dir):
    policies = [{"name": name, "model": tiny_policy_dir} for name in ("x", "y")]
    with arena_page(tmp_path, policies) as (page, sessions):
        with sessions.begin() as session:
            set_active(session=session, name="ana", active=False)
        page.locator("#plumb-arena-prompt textarea").fill("hi")
        page.locator("#plumb-arena-start").click()
        # Deactivating ends the rater's page sessions at once: the event is refused before any handler runs.
        playwright.expect(page.locator("#plumb-arena-message")).to_contain_text("Error", timeout=WAIT_MS)
        playwright.expect(page.locator("#plumb-arena-message")).not_to_contain_text("Traceback")
        playwright.expect(page.locator("#plumb-arena-new")).to_be_hidden()  # no battle started
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
        assert page.request.get(f"{origin}/gradio_api/login_check").status == 401  # the page's session is over


def test_votes_run_as_many_at_once_as_battles(tmp_path):
    # A vote holds its worker up to 2 s while its battle's stream sends its last update: one at a time would queue
    # every rater's vote behind another's.
    import gradio as gr

    engine = make_engine(f"sqlite:///{tmp_path / 'collect.sqlite'}")
    upgrade(engine)
    spec = campaign_from_dict({"name": "arena", "policies": ["a", "b"]})
    with gr.Blocks() as blocks:
        create_arena_tab(session_factory(engine), "arena", spec)
    limits = {fn.api_name: fn.concurrency_limit for fn in blocks.fns.values()}
    engine.dispose()
    assert limits["arena_start"] == CONCURRENT_BATTLES
    assert {name: limit for name, limit in limits.items() if name.startswith("arena_vote_")} == {
        f"arena_vote_{key}": CONCURRENT_BATTLES for key in "abtx"
    }


def test_an_early_vote_lets_both_answers_finish_says_it_counts_for_the_leaderboard_only_and_a_follow_up_goes_on(
    tmp_path, tiny_policy_dir
):
    gate, slow_text = threading.Event(), "Rain is water falling from clouds, drop after drop, until the end."
    with serving(gated_server_app(slow_text, gate)) as server_url:
        policies = [{"name": "tiny", "model": tiny_policy_dir}, {"name": "slow", "model": f"{server_url}/v1"}]
        with arena_page(tmp_path, policies) as (page, sessions):
            battle(page, "Tell me about rain.")  # voting opens while the server holds the second half back
            page.keyboard.press("a")
            message = page.locator("#plumb-arena-message")
            playwright.expect(message).to_contain_text("counts for the leaderboard only", timeout=WAIT_MS)
            statuses = page.locator("[id^=plumb-arena-status-]")
            playwright.expect(statuses.filter(has_text="answering")).to_have_count(1)  # the server's, still held
            gate.set()
            for side in "ab":
                playwright.expect(page.locator(f"#plumb-arena-status-{side}")).to_have_text(FINISHED, timeout=WAIT_MS)
            answers = page.locator("[id^=plumb-arena-answer-]")
            playwright.expect(answers.filter(has_text="until the end.")).to_have_count(1)  # not cut off at the vote

            page.locator("#plumb-arena-follow-up textarea").fill("And snow?")
            page.locator("#plumb-arena-send").click()
            playwright.expect(page.locator("#plumb-arena-key-b")).to_be_enabled(timeout=WAIT_MS)
            playwright.expect(answers.filter(has_text="You: And snow?")).to_have_count(2)
            for side in "ab":
                playwright.expect(page.locator(f"#plumb-arena-status-{side}")).to_have_text(FINISHED, timeout=WAIT_MS)
            page.keyboard.press("b")
            playwright.expect(message).to_contain_text("You knew the names", timeout=WAIT_MS)
            rows = arena_rows(sessions)
    assert len(rows) == 2
    (_, first, first_candidates, _), (_, second, second_candidates, _) = rows
    stored = {name: candidate for candidate, name in first_candidates}
    assert stored["slow"].completion == [{"role": "assistant", "content": slow_text}]  # whole, though voted early
    assert (stored["slow"].settings["finished"], stored["slow"].settings["complete"]) == (False, True)
    assert first.preference == 2 and first.flags == []
    assert second.preference == -2 and second.flags == [IDENTITY_LEAK]  # voted knowing the names
    for candidate, _ in second_candidates:
        assert [m["role"] for m in candidate.completion] == ["assistant", "user", "assistant"]
        assert candidate.completion[1]["content"] == "And snow?"
