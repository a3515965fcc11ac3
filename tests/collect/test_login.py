"""Signing in to the page, served for real: throttling per account and address, argon2 off the event loop, and
sessions that expire and end on a password reset or a deactivation.

Before these, a login flood stalled every other request (argon2 on the event loop),
failures were never slowed, and a session lived until the server stopped, through a
password reset.
"""

import threading
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from collect.app.login import LoginThrottle
from collect.serve import ServeArguments, build_server
from collect.store import WebSession
from collect.store.raters import set_active, set_password
from tests.support.campaigns import PASSWORDS, make_store
from tests.support.serving import serving


@pytest.fixture
def served(sqlite_url):
    """(URL, sessions) of the page served on a fresh SQLite store with raters ana, ben and rev."""
    engine, sessions, _ = make_store(sqlite_url)
    with serving(build_server(ServeArguments(db=sqlite_url, campaign="demo"))) as base_url:
        yield base_url, sessions
    engine.dispose()


def sign_in(base_url: str, name: str, password: str) -> tuple[httpx.Client, int]:
    """A client that posted the sign-in form, and the status the form got."""
    client = httpx.Client(base_url=base_url, timeout=60)
    return client, client.post("/login", data={"username": name, "password": password}).status_code


def signed_in(client: httpx.Client) -> bool:
    return client.get("/gradio_api/login_check").status_code == 200


def age_sessions(sessions, **ago: timedelta) -> None:
    """Move every stored session's clocks (`created_at`, `last_seen_at`) back by the given amounts."""
    with sessions.begin() as session:
        for row in session.scalars(select(WebSession)):
            for column, delta in ago.items():
                setattr(row, column, getattr(row, column) - delta)


def test_sessions_end_when_idle_too_old_on_a_password_reset_a_deactivation_and_sign_out(served):
    base_url, sessions = served
    ends = {
        "idle 13 hours": lambda: age_sessions(sessions, last_seen_at=timedelta(hours=13)),
        "8 days old": lambda: age_sessions(sessions, created_at=timedelta(days=8)),
        "password reset": lambda: _in_store(sessions, set_password, name="ana", password="a-new-one"),
        "deactivated": lambda: _in_store(sessions, set_active, name="ana", active=False),
    }
    password = PASSWORDS["ana"]
    for why, end in ends.items():
        client, status = sign_in(base_url, "ana", password)
        assert status == 200 and signed_in(client), why
        age_sessions(sessions, last_seen_at=timedelta(hours=11))  # used within the idle limit: still alive
        assert signed_in(client), why
        end()
        assert not signed_in(client), f"the session outlived: {why}"
        password = "a-new-one" if why == "password reset" else password
    _in_store(sessions, set_active, name="ana", active=True)
    client, _ = sign_in(base_url, "ana", password)
    client.get("/logout")
    assert not signed_in(client)
    with sessions() as session:
        assert all(row.ended_at is not None for row in session.scalars(select(WebSession)))


def _in_store(sessions, change, **arguments) -> None:
    with sessions.begin() as session:
        change(session=session, **arguments)


def test_failed_sign_ins_are_throttled_per_account_and_per_address(served):
    base_url, _ = served
    for _ in range(5):
        assert sign_in(base_url, "ana", "wrong")[1] == 400
    assert sign_in(base_url, "ana", PASSWORDS["ana"])[1] == 400  # paused: even the right password waits
    assert sign_in(base_url, "ben", PASSWORDS["ben"])[1] == 200  # another account is not held up
    for attempt in range(14):  # 5 + 1 failures so far from this address; 20 in all are allowed
        assert sign_in(base_url, f"guess{attempt}", "wrong")[1] == 400
    client = httpx.Client(base_url=base_url)
    refused = client.post("/login", data={"username": "ben", "password": PASSWORDS["ben"]})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_the_throttle_pause_doubles_and_lapses():
    now = [0.0]
    throttle = LoginThrottle(max_failures=3, window=900, pause=30, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait_left("ana") == 0
        throttle.failed("ana")
    assert throttle.wait_left("ana") == 30  # the 3rd failure: a 30 s pause
    now[0] = 30
    throttle.failed("ana")
    assert throttle.wait_left("ana") == 60  # each further failure doubles it
    now[0] = 90
    throttle.failed("ana")
    assert throttle.wait_left("ana") == 120  # doubling, not growing by a step: 30, 60, 120, 240
    now[0] = 210
    throttle.failed("ana")
    assert throttle.wait_left("ana") == 240
    now[0] = 450
    for _ in range(3):
        throttle.failed("ana")
    assert throttle.wait_left("ana") == 900  # 30 * 2**6 is capped at the 15-minute window
    now[0] = 450 + 900 + 1  # every failure is out of the 15-minute window
    assert throttle.wait_left("ana") == 0
    throttle.failed("ana")
    throttle.succeeded("ana")
    assert throttle.wait_left("ana") == 0


def test_a_sign_in_waiting_on_argon2_does_not_hold_up_other_requests(served, monkeypatch):
    base_url, _ = served
    release, entered = threading.Event(), threading.Event()
    from collect.store import raters

    real = raters._hasher()

    class HeldHasher:
        def verify(self, stored, password):
            entered.set()
            release.wait(120)
            return real.verify(stored, password)

    monkeypatch.setattr(raters, "_hasher", HeldHasher)
    login = threading.Thread(target=sign_in, args=(base_url, "ana", PASSWORDS["ana"]))
    login.start()
    try:
        assert entered.wait(60), "the sign-in never reached argon2"
        # Before the fix argon2 ran on the event loop, so this request waited for the sign-in to finish.
        assert httpx.get(f"{base_url}/gradio_api/login_check", timeout=30).status_code == 401
        assert login.is_alive()
    finally:
        release.set()
        login.join()


def test_an_unknown_name_costs_the_same_argon2_work_as_a_known_one(sqlite_url, monkeypatch):
    engine, sessions, _ = make_store(sqlite_url)
    from collect.store import raters

    real, verified = raters._hasher(), []

    class CountingHasher:
        def verify(self, stored, password):
            verified.append(stored)
            return real.verify(stored, password)

        def hash(self, password):
            return real.hash(password)

    monkeypatch.setattr(raters, "_hasher", CountingHasher)
    tries = [("ana", "wrong"), ("nobody", "wrong"), ("ana", PASSWORDS["ana"]), ("no\ud800body", "x"), ("ana", "\x00")]
    with sessions() as session:
        found = [raters.authenticate(session=session, name=name, password=password) for name, password in tries]
    assert [rater.name if rater else None for rater in found] == [None, None, "ana", None, None]
    # One verification each, against hashes of the same argon2 parameters (all but the salt and digest agree).
    assert len(verified) == len(tries) and len({stored.rsplit("$", 2)[0] for stored in verified}) == 1
    engine.dispose()
