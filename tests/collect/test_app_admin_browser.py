"""The review, campaign and admin tabs in a real browser (Playwright with Debian's Chromium, headless, on
127.0.0.1), and the same endpoints refused to a rater who calls them through the Gradio API.

A reviewer adjudicates a disputed task from the queue (its HTML shows as text), after a
mistake that leaves the form as it was; the Campaign tab shows its tables when opened; an
admin adds a rater, and a name taken leaves the table as it was; a rater sees none of the
staff tabs and cannot call them; a user's mistake leaves no traceback in the server log.
"""

import pytest
from sqlalchemy import select

from collect.serve import ServeArguments, build_server
from collect.store import Adjudication, Rater, Task, authenticate, create_rater
from tests.support.attacks import ATTACK
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, use_patient_expect
from tests.support.campaigns import PASSWORDS, add_attack_task, judge, make_store
from tests.support.serving import serving

playwright = pytest.importorskip("playwright.sync_api", reason="the browser test needs `pip install playwright`")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="the browser test needs Debian's Chromium: `apt-get install -y chromium`"
)
LOGINS = {**PASSWORDS, "boss": "boss-secret"}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(URL, sessions, disputed task id) of a served store whose HTML-carrying task ana and ben disagree on."""
    url = f"sqlite:///{tmp_path_factory.mktemp('admin') / 'collect.sqlite'}"
    engine, sessions, _ = make_store(url)
    add_attack_task(sessions, ATTACK)
    with sessions.begin() as session:
        create_rater(session=session, name="boss", role="admin", password=LOGINS["boss"])
        disputed = session.scalars(select(Task.id).order_by(Task.id.desc())).first()
    judge(sessions, "ana", disputed, preference=2, rationale="<b>A</b> is right")
    judge(sessions, "ben", disputed, preference=-1)
    with serving(build_server(ServeArguments(db=url))) as base_url:
        yield base_url, sessions, disputed
    engine.dispose()


@pytest.fixture
def page(app):
    """A fresh headless Chromium page at the app's login."""
    use_patient_expect()
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.goto(app[0] + "/")
            yield page
        finally:
            browser.close()


def log_in(page, name: str) -> None:
    page.locator("input").nth(0).fill(name)
    page.locator("input").nth(1).fill(LOGINS[name])
    page.get_by_role("button", name="Login").click()
    playwright.expect(page.locator("#plumb-header")).to_contain_text(f"Signed in as {name}")


def test_a_reviewer_adjudicates_the_disputed_task_from_the_queue(app, page):
    _, sessions, disputed = app
    log_in(page, "rev")
    page.get_by_role("tab", name="Review").click()  # opening the tab loads the queue
    playwright.expect(page.locator("#plumb-review-status")).to_contain_text(
        f"1 task waiting for review · task {disputed}"
    )
    candidates = page.locator("#plumb-review-candidates")
    playwright.expect(candidates).to_contain_text("A · policy sft")
    playwright.expect(candidates).to_contain_text('<img src=x onerror="window.__plumb_ran=1">')  # as text
    answers = page.locator("#plumb-review-answers")
    playwright.expect(answers).to_contain_text("A better")
    playwright.expect(answers).to_contain_text("B slightly better")
    playwright.expect(answers).to_contain_text("<b>A</b> is right")
    assert page.locator('img[src="x"]').count() == 0 and page.evaluate("window.__plumb_ran") is None

    # Saving with nothing chosen is said in a warning; the form stays, and its buttons still answer.
    page.locator("#plumb-review-save").click()
    playwright.expect(page.get_by_text("choose an answer before saving")).to_be_visible()
    playwright.expect(candidates).to_contain_text("A · policy sft")
    playwright.expect(answers).to_contain_text("<b>A</b> is right")
    playwright.expect(page.locator("#plumb-review-status")).to_contain_text(
        f"1 task waiting for review · task {disputed}"
    )
    assert page.locator("#plumb-review-choice .error, #plumb-review-candidates .error").count() == 0
    page.locator("#plumb-review-choice").get_by_label("B better", exact=True).check()
    page.locator("#plumb-review-note textarea").fill("B answers the question")
    page.locator("#plumb-review-save").click()
    playwright.expect(page.locator("#plumb-review-message")).to_contain_text(f"Saved the decision on task {disputed}")
    playwright.expect(page.locator("#plumb-review-status")).to_contain_text("0 tasks waiting for review")
    with sessions.begin() as session:
        (decision,) = session.scalars(select(Adjudication)).all()
        assert (decision.task_id, decision.preference, decision.note) == (disputed, -2, "B answers the question")


def test_opening_the_campaign_tab_shows_progress_prompts_and_explained_agreement(app, page):
    log_in(page, "rev")
    page.get_by_role("tab", name="Campaign").click()  # no Refresh pressed
    playwright.expect(page.locator("#plumb-overview")).to_contain_text("tasks")
    quality = page.locator("#plumb-quality")
    playwright.expect(quality.locator("table").first).to_contain_text("Fleiss' kappa")
    playwright.expect(quality).to_contain_text("Landis & Koch")
    playwright.expect(quality).to_contain_text("mean_agreement")
    page.get_by_text("Progress per task").click()
    playwright.expect(page.locator("#plumb-task-progress")).to_contain_text("question 0")


def test_an_admin_adds_a_rater(app, page):
    _, sessions, _ = app
    log_in(page, "boss")
    page.get_by_role("tab", name="Admin").click()
    raters = page.locator("#plumb-raters")
    playwright.expect(raters).to_contain_text("ben")  # listed on opening, no "Refresh list" pressed

    # A name taken is a warning; the table and the form stay as they were.
    page.locator("#plumb-admin-name textarea").fill("ana")
    page.locator("#plumb-admin-add").click()
    playwright.expect(page.get_by_text("a rater named 'ana' already exists")).to_be_visible()
    playwright.expect(raters).to_contain_text("ben")
    assert page.locator("#plumb-raters .error, #plumb-admin-message .error").count() == 0
    page.locator("#plumb-admin-name textarea").fill("zoe")
    page.locator("#plumb-admin-password input").fill("zoe-secret")
    page.locator("#plumb-admin-add").click()
    playwright.expect(page.locator("#plumb-admin-message")).to_contain_text("Added rater 'zoe'")
    playwright.expect(page.locator("#plumb-raters")).to_contain_text("zoe")
    with sessions.begin() as session:
        assert authenticate(session=session, name="zoe", password="zoe-secret").role == "rater"


def test_a_rater_sees_no_staff_tab_and_cannot_call_one(app, page):
    from gradio_client import Client

    base_url, sessions, _ = app
    log_in(page, "ana")
    for tab in ("Review", "Admin", "Campaign"):
        playwright.expect(page.get_by_role("tab", name=tab)).to_have_count(0)
    client = Client(base_url + "/", auth=("ana", PASSWORDS["ana"]), verbose=False)
    try:
        calls = {
            "/review_next": (),
            "/review_pass": (),
            "/adjudicate": ("B better", "no"),
            "/raters": (),
            "/add_rater": ("mallory", "admin", "mallory-secret"),
            "/set_role": ("ana", "admin"),
            "/deactivate_rater": ("ben",),
            "/reset_password": ("boss", "taken"),
            "/export": ("judgments", False, False),
            "/push_to_hub": ("judgments", False, False, "team/prefs"),
            "/campaign_activity": (),
        }
        for api_name, arguments in calls.items():
            with pytest.raises(Exception, match="reviewers and admins|admins only"):
                client.predict(*arguments, api_name=api_name)
    finally:
        client.close()
    with sessions.begin() as session:
        assert session.scalar(select(Rater).where(Rater.name == "mallory")) is None
        assert session.scalar(select(Rater.role).where(Rater.name == "ana")) == "rater"


def test_a_users_mistake_leaves_no_traceback_in_the_server_log_and_a_failure_still_does(app, capfd, monkeypatch):
    from gradio_client import Client

    from collect.services import admin

    client = Client(app[0] + "/", auth=("boss", LOGINS["boss"]), verbose=False)
    try:
        capfd.readouterr()
        client.predict("ana", "rater", "x-secret", api_name="/add_rater")  # a name taken: said, not raised
        client.predict(None, "", api_name="/adjudicate")  # nothing chosen, no task loaded
        assert "Traceback" not in capfd.readouterr().err

        def broken(**_):
            raise RuntimeError("the disk is full")

        monkeypatch.setattr(admin, "add_rater", broken)
        with pytest.raises(Exception):  # noqa: B017 (Gradio hides the message from the caller)
            client.predict("eve", "rater", "eve-secret", api_name="/add_rater")
        log = capfd.readouterr().err
        assert "Traceback" in log and "the disk is full" in log
    finally:
        client.close()
