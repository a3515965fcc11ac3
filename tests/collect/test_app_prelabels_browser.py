"""Reward-model pre-labels on the rater page in a real browser (Playwright, Debian's Chromium), one campaign per mode.

`shown`: a secondary line names the response the model prefers, as this rater's label, and how sure it is.
`after_vote`: nothing before the vote; the "saved" message names the model's guess on the task just answered.
`hidden`: the guess never shows, and never reaches the browser (every event output the page receives is read).
The campaigns are scored by a hand-built scorer with known margins, so the right label and percentage are known.
"""

import contextlib
import math
import re

import pytest

from collect.serve import ServeArguments, build_server
from collect.services.prelabels import score_campaign
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, log_in
from tests.support.campaigns import make_store, margin_scorer, seed_campaign
from tests.support.serving import serving

playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs `pip install playwright`")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="the browser test needs Debian's Chromium: `apt-get install -y chromium`"
)

# dpo's reward minus sft's on prompt i (sft scores 0): dpo preferred on prompt 0, sft on prompt 1.
MARGINS = [2.0, -1.3]
CONFIDENCES = [str(round(1 / (1 + math.exp(-abs(m))), 4)) for m in MARGINS]  # as stored: "0.8808", "0.7858"
GUESS = re.compile(r"Model's guess: ([AB]) is better \((\d+)% sure\)")
AFTER_VOTE = re.compile(r"The model's guess on that one: ([AB]) \((\d+)% sure\)")
# What would give a guess away, in anything the page receives: its words, its percentage, the stored confidence.
GIVEAWAYS = ["guess", "% sure", *CONFIDENCES]


hand_scorer = margin_scorer(MARGINS)


def expected(i: int) -> tuple[str, int]:
    """The answer the model prefers on prompt i, and its confidence in whole percents."""
    return f"answer {i} from {'dpo' if MARGINS[i] > 0 else 'sft'}", round(100 / (1 + math.exp(-abs(MARGINS[i]))))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(URL, sessions) of a store with a scored two-task campaign per mode: c-shown, c-after_vote, c-hidden."""
    url = f"sqlite:///{tmp_path_factory.mktemp('prelabels') / 'collect.sqlite'}"
    engine, sessions, _ = make_store(url, name="c-shown", prompts=len(MARGINS), prelabels="shown")
    for display in ("after_vote", "hidden"):
        settings = {"raters_per_task": 1, "max_raters_per_task": 1, "prelabels": display}
        seed_campaign(sessions, name=f"c-{display}", prompts=len(MARGINS), **settings)
    for display in ("shown", "after_vote", "hidden"):
        score_campaign(sessions, f"c-{display}", scorer=hand_scorer, model="model:hand")
    yield url, sessions
    engine.dispose()


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module; each test opens its own context (cookies do not tell ports apart)."""
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# Every fetch answer the page gets, streamed event outputs included, teed into a list as it arrives (Gradio reads
# its event stream with fetch; Playwright cannot read the body of a stream that is still open, like the heartbeat).
RECORD_FETCHES = """(() => {
  const received = (window.__plumb_received = []);
  const fetch = window.fetch.bind(window);
  window.fetch = async (...args) => {
    const response = await fetch(...args);
    const reader = response.clone().body?.getReader();
    const decoder = new TextDecoder();
    const read = async () => {
      for (let part = await reader.read(); !part.done; part = await reader.read())
        received.push(decoder.decode(part.value, {stream: true}));
    };
    if (reader) read().catch(() => {});
    return response;
  };
})()"""


@contextlib.contextmanager
def rater_page(store, browser, campaign: str):
    """(ana's signed-in page on a server of `campaign`, a callable giving all the data the page has received)."""
    url, _ = store
    with serving(build_server(ServeArguments(db=url, campaign=campaign))) as base_url:
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.add_init_script(RECORD_FETCHES)
        page = context.new_page()
        documents = []  # the HTML pages themselves: the app's page carries its initial config
        page.on("response", lambda r: documents.append(r) if r.request.resource_type == "document" else None)

        def received() -> str:
            # The app's page, loaded last (the login page's body went when the browser left it), and every fetch.
            return documents[-1].text() + "\n" + page.evaluate("window.__plumb_received.join('')")

        try:
            page.goto(base_url + "/")
            log_in(page, "ana")
            yield page, received
        finally:
            context.close()


def on_screen(page) -> tuple[int, dict[str, str]]:
    """The task shown: its prompt's number, and the answer text under each label."""
    playwright.expect(page.locator("#plumb-response-a")).to_contain_text("answer")
    texts = {label: page.locator(f"#plumb-response-{label.lower()}").inner_text().strip() for label in "AB"}
    return int(re.search(r"answer (\d+)", texts["A"]).group(1)), texts


def answer(page, judged_today: int) -> str:
    """Answer "A much better" with the button and return the message that says it was saved."""
    page.locator("#plumb-key-1").click()
    playwright.expect(page.locator("#plumb-progress")).to_contain_text(f"{judged_today} judged today")
    message = page.locator("#plumb-message")
    playwright.expect(message).to_contain_text("Saved: A much better")
    return message.inner_text()


def test_shown_the_guess_names_the_preferred_response_and_how_sure(store, browser, tmp_path):
    with rater_page(store, browser, "c-shown") as (page, _):
        for judged in range(len(MARGINS)):
            i, texts = on_screen(page)
            line = page.locator("#plumb-prelabel")
            playwright.expect(line).to_contain_text("Model's guess")
            label, percent = GUESS.search(line.inner_text()).groups()
            assert (texts[label], int(percent)) == expected(i)
            # Secondary: under the answer buttons, in smaller type than the responses.
            assert line.bounding_box()["y"] > page.locator("#plumb-key-1").bounding_box()["y"]
            size = "e => parseFloat(getComputedStyle(e).fontSize)"
            assert line.locator("p").evaluate(size) < page.locator("#plumb-response-a p").first.evaluate(size)
            if judged == 0:
                page.screenshot(path=str(tmp_path / "prelabel-shown.png"))
            answer(page, judged + 1)
        playwright.expect(page.locator("#plumb-task")).to_be_hidden()


def test_after_vote_the_guess_comes_only_with_the_saved_message(store, browser):
    with rater_page(store, browser, "c-after_vote") as (page, data):
        for judged in range(len(MARGINS)):
            i, texts = on_screen(page)
            assert page.locator("#plumb-prelabel").count() == 0
            # The one guess on the page is the saved message's, on the task answered before this one.
            message = page.locator("#plumb-message").inner_text()
            assert "guess" not in page.locator("body").inner_text().replace(message, "").lower()
            before = data()
            assert texts["A"] in before  # the page's data is read: the task it shows is in it
            # Nothing of this task's guess before its vote (the two tasks' percentages differ: 88 and 79)...
            assert f"{expected(i)[1]}% sure" not in before and CONFIDENCES[i] not in before
            if judged == 0:  # ... and before the first vote nothing about the model at all
                assert not [word for word in GIVEAWAYS if word in before]
            label, percent = AFTER_VOTE.search(answer(page, judged + 1)).groups()
            assert (texts[label], int(percent)) == expected(i)  # the label as this rater saw the task just answered


def test_hidden_the_guess_never_shows_and_never_reaches_the_page(store, browser):
    with rater_page(store, browser, "c-hidden") as (page, data):
        assert page.locator("#plumb-prelabel").count() == 0
        for judged in range(len(MARGINS)):
            on_screen(page)
            assert "guess" not in page.locator("body").inner_text().lower()
            assert "guess" not in answer(page, judged + 1).lower()
        playwright.expect(page.locator("#plumb-task")).to_be_hidden()
        everything = data()
        assert "Saved: A much better" in everything  # the event outputs were read...
        assert not [word for word in GIVEAWAYS if word in everything]  # ...and carry nothing of the model's guess
