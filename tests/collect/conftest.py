"""Fixtures of the collect tests: a real PostgreSQL server started for the session, and stores on both databases."""

import contextlib

import pytest
from fastapi.testclient import TestClient

from collect.api.server import create_app
from collect.store import create_rater, make_engine, session_factory, upgrade
from tests.support.campaigns import seed_campaign
from tests.support.postgres import create_database, drop_database, postgres_available, temporary_postgres


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the test session (unix socket in a temp dir, stopped at the end): its URL template."""
    if not postgres_available():
        pytest.skip("no PostgreSQL server programs (initdb, pg_ctl) on this machine: `apt-get install postgresql`")
    with temporary_postgres() as server_url:
        yield server_url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """An empty database, once as a SQLite file and once on the session's PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'collect.sqlite'}"
        return
    server = request.getfixturevalue("postgres_server")
    url = create_database(server)
    yield url
    drop_database(server, url)  # each database is a few MB on disk: keep the server's directory small


@pytest.fixture
def sqlite_url(tmp_path):
    """An empty SQLite database file."""
    return f"sqlite:///{tmp_path / 'collect.sqlite'}"


@pytest.fixture
def store(db_url):
    """(engine, sessions) on a freshly migrated database of each kind; disposed afterwards."""
    from collect.store import make_engine, session_factory, upgrade

    engine = make_engine(db_url)
    upgrade(engine)
    yield engine, session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def patient_browser_waits():
    """Playwright's `expect` waits up to EXPECT_TIMEOUT_MS in the browser tests (tests/support/browser.py)."""
    from tests.support.browser import use_patient_expect

    with contextlib.suppress(ImportError):  # without playwright the browser tests are skipped (a failure in CI)
        use_patient_expect()


@pytest.fixture
def api(db_url):
    """(client, tokens by rater name) on a campaign of 3 pairwise tasks, 2 raters per task, on SQLite and PostgreSQL."""
    engine = make_engine(db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_campaign(sessions, prompts=3, raters_per_task=2, max_raters_per_task=2, flags=["unsafe"])
    tokens = {}
    with sessions.begin() as session:
        for name, role in (("ana", "rater"), ("ben", "rater"), ("rev", "reviewer")):
            tokens[name] = create_rater(session=session, name=name, role=role)[1]
    engine.dispose()
    with TestClient(create_app(db_url)) as client:
        yield client, tokens
