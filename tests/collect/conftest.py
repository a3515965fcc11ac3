"""Fixtures of the collect tests: a real PostgreSQL server started for the session, and stores on both databases."""

import pytest

from collect.store.temporary_postgres import create_database, drop_database, postgres_available, temporary_postgres


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


def seed_campaign(sessions, *, name="demo", kind="pairwise", prompts=4, policies=("sft", "dpo"), gold=0, **settings):
    """Store a campaign with `prompts` prompts, one candidate per policy each, and its tasks; returns its name.

    The first `gold` prompts become gold tasks whose first policy is the better one.
    """
    from collect.campaign import as_definition, campaign_from_dict
    from collect.store import add_candidate, add_prompt, build_tasks, create_campaign, ensure_policy

    spec = campaign_from_dict({"name": name, "kind": kind, **settings})
    with sessions.begin() as session:
        campaign = create_campaign(session=session, name=name, kind=kind, definition=as_definition(spec))
        stored_policies = [ensure_policy(session=session, campaign=campaign, name=p) for p in policies]
        answers = {}
        for i in range(prompts):
            prompt = add_prompt(
                session=session,
                campaign=campaign,
                external_id=f"p{i}",
                messages=[{"role": "user", "content": f"question {i}"}],
            )
            ids = [
                add_candidate(
                    session=session,
                    prompt=prompt,
                    policy=policy,
                    completion=[{"role": "assistant", "content": f"answer {i} from {policy.name}"}],
                ).id
                for policy in stored_policies
            ]
            if i < gold:
                answers[prompt.id] = {"candidate_ranks": {str(cid): rank for rank, cid in enumerate(ids, start=1)}}
        build_tasks(session=session, campaign=campaign, overlap=spec.raters_per_task, gold_answers=answers)
    return name


def seed_raters(sessions, count: int, *, prefix: str = "rater") -> list[str]:
    """Add `count` raters; returns their names."""
    from collect.store import create_rater

    names = [f"{prefix}{i}" for i in range(count)]
    with sessions.begin() as session:
        for name in names:
            create_rater(session=session, name=name)
    return names
