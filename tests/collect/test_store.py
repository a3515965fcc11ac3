"""The preference store: migrations, raters, and append-only judgments guarded by the database."""

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from collect.store import (
    Assignment,
    Judgment,
    Task,
    audit_events,
    authenticate,
    campaign_by_name,
    create_rater,
    live_judgment,
    make_engine,
    open_store,
    rater_by_token,
    record_judgment,
    retract_judgment,
    schema_problem,
    store_url,
    upgrade,
)
from collect.store.models import ApiToken, Base, StoreError
from collect.store.raters import RaterError
from tests.support.campaigns import seed_campaign, seed_raters


def test_migrations_create_exactly_the_models_schema(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine, _ = store
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert schema_problem(engine) is None
    assert upgrade(engine) == "0007"  # a second init is a no-op upgrade


def test_an_empty_database_says_to_run_init(tmp_path):
    engine = make_engine(str(tmp_path / "empty.sqlite"))
    assert "plumb collect init" in schema_problem(engine)


def test_opening_a_missing_sqlite_file_creates_neither_it_nor_its_folders(tmp_path):
    typo = tmp_path / "outptus" / "collect-demo" / "collect.sqlite"
    with pytest.raises(StoreError) as refused:
        open_store(str(typo))
    assert str(refused.value) == f"{typo}: no such database; run `plumb collect init --db {typo}` to create it"
    assert list(tmp_path.iterdir()) == []


def test_sqlite_runs_in_wal_mode(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_sqlite_commits_with_synchronous_normal_unless_full_is_asked(sqlite_url):
    def level(**engine_args) -> int:
        engine = make_engine(**engine_args)
        with engine.connect() as connection:
            value = connection.exec_driver_sql("PRAGMA synchronous").scalar()
        engine.dispose()
        return value

    assert level(url=sqlite_url) == 1  # NORMAL
    assert level(url=sqlite_url, synchronous="full") == 2  # FULL
    assert level(url=f"{sqlite_url}?synchronous=full") == 2  # on the URL, for configs and verbs that take a `db`
    assert level(url=store_url(sqlite_url, synchronous="full")) == 2
    upgrade(make_engine(sqlite_url))
    with open_store(sqlite_url, synchronous="full")() as session:
        assert session.connection().exec_driver_sql("PRAGMA synchronous").scalar() == 2
    with pytest.raises(StoreError, match="synchronous: expected one of normal, full, got 'fast'"):
        make_engine(sqlite_url, synchronous="fast")
    with pytest.raises(StoreError, match="synchronous: expected one of normal, full, got 'off'"):
        make_engine(f"{sqlite_url}?synchronous=off")
    with pytest.raises(StoreError, match="a SQLite setting; PostgreSQL's durability is the server's own"):
        make_engine("postgresql://plumb@/plumb", synchronous="full")


def test_the_servers_take_synchronous_from_their_config(tmp_path, monkeypatch):
    from collect import serve_api
    from collect.serve import ServeArguments, config_types
    from plumb.config import ConfigError, parse_config

    config = tmp_path / "serve.yaml"
    config.write_text(f"db: {tmp_path / 'c.sqlite'}\nsynchronous: full\n")
    (args,) = parse_config(config_types(), ["--config", str(config)])
    assert args.store_url() == f"sqlite:///{tmp_path / 'c.sqlite'}?synchronous=full"
    assert ServeArguments().store_url() is None  # no setting: the default database, as before
    config.write_text("synchronous: fast\n")
    with pytest.raises(ConfigError, match="serve.yaml: synchronous: expected one of normal, full"):
        parse_config(config_types(), ["--config", str(config)])
    served = []
    # What each uvicorn worker would serve: the app its factory builds from the settings main() left.
    monkeypatch.setattr("uvicorn.run", lambda target, **_: served.append(serve_api.app_from_settings()))
    monkeypatch.setenv(serve_api.SETTINGS_ENV, "{}")  # main() writes it; monkeypatch restores the environment after
    upgrade(make_engine(str(tmp_path / "c.sqlite")))
    serve_api.main(db=str(tmp_path / "c.sqlite"), synchronous="full")
    with served[0].state.sessions() as session:
        assert session.connection().exec_driver_sql("PRAGMA synchronous").scalar() == 2
    served[0].state.sessions.kw["bind"].dispose()


def test_raters_have_argon2_passwords_and_secret_tokens(store):
    _, sessions = store
    with sessions.begin() as session:
        rater, token = create_rater(session=session, name="alice", role="reviewer", password="s3cret!")
        (stored,) = session.scalars(select(ApiToken)).all()
        assert rater.password_hash.startswith("$argon2id$") and token not in stored.token_hash
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() and stored.scopes == ["rate", "review"]
    with sessions() as session:
        assert rater_by_token(session=session, token=token).name == "alice"
        assert rater_by_token(session=session, token=token + "x") is None
        assert authenticate(session=session, name="alice", password="s3cret!").role == "reviewer"
        assert authenticate(session=session, name="alice", password="wrong") is None
    with pytest.raises(RaterError, match="already exists"), sessions.begin() as session:
        create_rater(session=session, name="alice")
    with pytest.raises(RaterError, match="unknown role 'boss'"), sessions.begin() as session:
        create_rater(session=session, name="bob", role="boss")


@pytest.fixture
def one_rater(store):
    """Sessions on a store with the seeded demo campaign and one rater, `rater0`."""
    _, sessions = store
    seed_campaign(sessions)
    seed_raters(sessions, 1)
    return sessions


def _first_assignment(session, rater_name="rater0"):
    from collect.store import rater_by_name

    rater = rater_by_name(session=session, name=rater_name)
    task = session.scalars(select(Task).order_by(Task.id)).first()
    assignment = Assignment(task_id=task.id, rater_id=rater.id, candidate_order=[0, 1], expires_at=task.created_at)
    session.add(assignment)
    session.flush()
    return assignment


def test_edits_and_undos_append_rows_and_nothing_is_lost(one_rater):
    sessions = one_rater
    with sessions.begin() as session:
        assignment = _first_assignment(session)
        first = record_judgment(session=session, assignment=assignment, preference=2, rationale="clearer")
        edit = record_judgment(session=session, assignment=assignment, preference=-1)
        assert edit.supersedes_id == first.id
        assert session.get(Task, assignment.task_id).judgment_count == 1
        retraction = retract_judgment(session=session, judgment=edit)
        assert session.get(Task, assignment.task_id).judgment_count == 0
        assert live_judgment(session=session, task_id=assignment.task_id, rater_id=assignment.rater_id) == retraction
        again = record_judgment(session=session, assignment=assignment, both_bad=True)
        assert again.supersedes_id == retraction.id
    with sessions() as session:
        rows = session.scalars(select(Judgment).order_by(Judgment.id)).all()
        assert [(r.preference, r.both_bad, r.retracted) for r in rows] == [
            (2, False, False),
            (-1, False, False),
            (None, False, True),
            (None, True, False),
        ]
        assert rows[0].rationale == "clearer"
        audit = [event.action for event in audit_events(session=session)]
        assert audit[-4:] == ["judgment.submitted", "judgment.edited", "judgment.retracted", "judgment.submitted"]


def test_the_database_refuses_a_second_live_judgment_of_a_pair(one_rater):
    sessions = one_rater
    with sessions.begin() as session:
        assignment = _first_assignment(session)
        first = record_judgment(session=session, assignment=assignment, preference=1)
        ids = {"task_id": first.task_id, "rater_id": first.rater_id, "assignment_id": assignment.id}
    # What two racing requests would write, bypassing the application: two chain starts, or a forked chain.
    for duplicate in ({}, {"supersedes_id": None}), ({"supersedes_id": first.id}, {"supersedes_id": first.id}):
        with pytest.raises(IntegrityError), sessions.begin() as session:
            for extra in duplicate:
                session.add(Judgment(**ids, preference=3, **extra))
                session.flush()


def test_answers_must_fit_the_task(one_rater):
    sessions = one_rater
    with pytest.raises(StoreError, match="preference must be an integer from -3 to 3"), sessions.begin() as session:
        record_judgment(session=session, assignment=_first_assignment(session), preference=5)
    with pytest.raises(StoreError, match="needs a preference"), sessions.begin() as session:
        record_judgment(session=session, assignment=_first_assignment(session))
    with sessions() as session:
        assert campaign_by_name(session=session, name="demo").kind == "pairwise"
        with pytest.raises(StoreError, match="no campaign named 'nope'"):
            campaign_by_name(session=session, name="nope")


def test_sqlite_writers_take_turns_and_a_long_wait_is_a_timeout(sqlite_url, monkeypatch):
    from sqlalchemy import text

    from collect.store import engine as engine_module

    monkeypatch.setattr(engine_module, "SQLITE_BUSY_TIMEOUT_MS", 100)
    engine = make_engine(sqlite_url)
    with engine.connect() as holder:
        holder.execute(text("SELECT 1"))  # begins IMMEDIATE and holds the writer turn until the block ends
        with pytest.raises(TimeoutError, match="held the SQLite database"), engine.connect() as waiter:
            waiter.execute(text("SELECT 1"))
    with engine.connect() as after:  # the turn was given back when the holder's transaction rolled back
        assert after.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_upgrading_a_first_schema_database_keeps_its_judgments(sqlite_url):
    from alembic import command

    from collect.store.engine import alembic_config

    engine = make_engine(sqlite_url)
    command.upgrade(alembic_config(engine), "0001")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO raters (name, role, active, created_at) VALUES ('ann', 'rater', 1, '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO campaigns (name, kind, definition, created_at) VALUES ('c', 'pairwise', '{}', '2026-01-01')"
        )
        connection.exec_driver_sql("INSERT INTO prompts (campaign_id, external_id, messages) VALUES (1, 'p', '[]')")
        connection.exec_driver_sql(
            "INSERT INTO tasks (campaign_id, prompt_id, kind, candidate_ids, is_gold, target_overlap, judgment_count,"
            " priority, created_at) VALUES (1, 1, 'pairwise', '[1, 2]', 0, 2, 1, 0, '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO assignments (task_id, rater_id, candidate_order, state, leased_at, expires_at) VALUES "
            "(1, 1, '[0, 1]', 'judged', '2026-01-01', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO judgments (task_id, rater_id, assignment_id, retracted, preference, both_bad, rationale,"
            " flags, created_at) VALUES (1, 1, 1, 0, 2, 0, 'clearer', '[]', '2026-01-01')"
        )
    assert upgrade(engine) == "0007"
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT preference, rationale, edit FROM judgments").one() == (
            2,
            "clearer",
            None,
        )
        assert connection.exec_driver_sql("SELECT source FROM tasks").scalar() == "pool"
