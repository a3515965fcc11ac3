"""Opening the store: a SQLite file in WAL mode by default, PostgreSQL (psycopg 3) by URL, and migrations.

SQLite commits with `synchronous=NORMAL` unless asked for `full` (`make_engine(..., synchronous="full")`
or `?synchronous=full` on the URL, so every verb and config that takes a `db` can ask): in WAL
mode an application crash loses nothing, a power loss can lose the last commits. PostgreSQL's
durability is the server's own settings (`fsync`, `synchronous_commit`).

SQLite transactions start with BEGIN IMMEDIATE, so the writer lock is taken before the
first read: a scheduler that reads which tasks are free and then leases one cannot
be overtaken by another thread between the two. PostgreSQL uses row locks instead
(see `collect.services.scheduling`).
"""

import contextlib
import functools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from collect.store.models import StoreError
from plumb.paths import data_dir

DB_ENV = "PLUMB_DB"
MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# SQLite's `PRAGMA synchronous` levels offered; NORMAL skips the fsync per commit in WAL mode.
SYNCHRONOUS_LEVELS = {"normal": 1, "full": 2}


def default_url() -> str:
    """`$PLUMB_DB`, else a SQLite file `collect.sqlite` in the Plumb data directory."""
    return os.environ.get(DB_ENV) or f"sqlite:///{data_dir() / 'collect.sqlite'}"


def normalize_url(url: str | None) -> str:
    """A database URL from what a user typed: a URL, a bare file path (SQLite) or None (the default)."""
    if not url:
        return default_url()
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]  # psycopg 3, not the psycopg2 default
    return url


def make_engine(url: str | None = None, *, synchronous: str | None = None, **engine_kwargs) -> Engine:
    """An engine for `url` (see `normalize_url`); SQLite files get WAL, a busy timeout, foreign keys and
    `synchronous` (`normal` unless `full` is asked, here or by `?synchronous=` on the URL)."""
    url, synchronous = _pop_synchronous(normalize_url(url), synchronous)
    if not url.startswith("sqlite"):
        if synchronous is not None:
            raise StoreError(
                "synchronous: a SQLite setting; PostgreSQL's durability is the server's own (fsync, synchronous_commit)"
            )
        engine_kwargs.setdefault("pool_size", 20)
        engine_kwargs.setdefault("max_overflow", 40)
        engine_kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **engine_kwargs)
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **engine_kwargs
    )
    writers = SQLiteWriters()
    event.listen(engine, "connect", functools.partial(_configure_sqlite, synchronous=synchronous or "normal"))
    event.listen(engine, "begin", writers.begin)
    event.listen(engine, "commit", writers.end)
    event.listen(engine, "rollback", writers.end)
    return engine


def store_url(url: str | None, *, synchronous: str | None = None) -> str | None:
    """`url` with `synchronous` (SQLite's commit durability: normal or full) on it, for code that takes a URL only."""
    if synchronous is None:
        return url
    check_synchronous(synchronous)
    with_level = make_url(normalize_url(url)).update_query_dict({"synchronous": synchronous})
    return with_level.render_as_string(hide_password=False)


def check_synchronous(level: str) -> str:
    """`level` when it is one of `SYNCHRONOUS_LEVELS`; a `StoreError` naming the choices otherwise."""
    if level not in SYNCHRONOUS_LEVELS:
        raise StoreError(f"synchronous: expected one of {', '.join(SYNCHRONOUS_LEVELS)}, got {level!r}")
    return level


def _pop_synchronous(url: str, synchronous: str | None) -> tuple[str, str | None]:
    # Taken off the URL: neither SQLAlchemy nor the drivers know the key. The argument wins over the URL.
    if "synchronous=" in url:
        parsed = make_url(url)
        synchronous = synchronous or parsed.query.get("synchronous")
        url = parsed.difference_update_query(["synchronous"]).render_as_string(hide_password=False)
    return url, None if synchronous is None else check_synchronous(synchronous)


def _configure_sqlite(dbapi_connection, _record, *, synchronous: str) -> None:
    # pysqlite's own transaction handling would defer BEGIN; `SQLiteWriters.begin` issues it instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # NORMAL: durable across application crashes in WAL mode, fsync at checkpoints; FULL: fsync at every commit.
    cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
    cursor.close()


class SQLiteWriters:
    """Lets one transaction of this process at a time into SQLite, then begins it IMMEDIATE.

    SQLite makes a waiting writer sleep and retry in growing steps, in no order, which
    under load turns into seconds of tail latency; a lock hands the turn over at once.
    Other processes on the same file still meet SQLite's own busy timeout.
    """

    def __init__(self):
        self._lock = threading.Lock()

    def begin(self, connection) -> None:
        """Wait for the turn, then BEGIN IMMEDIATE (the write lock before the first read)."""
        if not self._lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise TimeoutError("another transaction of this process has held the SQLite database for too long")
        connection.info["plumb_holds_writer_turn"] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.end(connection)
            raise

    def end(self, connection) -> None:
        """Give the turn back when this connection's transaction commits or rolls back."""
        if connection.info.pop("plumb_holds_writer_turn", False):
            self._lock.release()


def refresh_statistics(session: Session) -> None:
    """After adding many tasks: on PostgreSQL, ANALYZE the tables the scheduler's plans depend on.

    Until autovacuum gets to it, a planner with no statistics for thousands of new tasks picks plans
    that read all of them on every lease (9 leases/s instead of 33 in `bench/collect_load.py`).
    SQLite's plans for these statements do not depend on statistics.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE tasks, assignments"))  # counts this transaction's own new rows too


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions on `engine` that keep loaded objects readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine):
    """An Alembic config pointing at the migrations shipped inside this package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine) -> str:
    """Create or upgrade the database to the newest schema; returns the revision it is at."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_problem(engine: Engine) -> str | None:
    """Why this database cannot be used yet (no tables, or an old schema); None when it is current."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    if not inspect(engine).has_table("alembic_version"):
        where = engine.url.render_as_string(hide_password=True)
        return f"{where} has no Plumb tables: run `plumb collect init --db URL`"
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        return f"database schema is at {current}, Plumb needs {head}: run `plumb collect init --db URL` to upgrade"
    return None


def sqlite_file(url: str | None) -> Path | None:
    """The file a SQLite URL (or bare path, or None for the default) names; None for PostgreSQL or in-memory."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def require_existing(url: str | None) -> None:
    """Refuse a SQLite file that does not exist, before anything opens (and so creates) it or its folders."""
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise StoreError(f"{path}: no such database; run `plumb collect init --db {path}` to create it")


def open_store(url: str | None = None, *, synchronous: str | None = None) -> sessionmaker[Session]:
    """Sessions on an existing, initialized, current database; `StoreError` saying how to fix it otherwise."""
    require_existing(url)
    engine = make_engine(url, synchronous=synchronous)
    problem = schema_problem(engine)
    if problem:
        engine.dispose()
        raise StoreError(problem)
    return session_factory(engine)


@contextlib.contextmanager
def opened_store(url: str | None = None, *, synchronous: str | None = None) -> Iterator[sessionmaker[Session]]:
    """`open_store` for one command: its pooled connections are closed when the block ends."""
    sessions = open_store(url, synchronous=synchronous)
    try:
        yield sessions
    finally:
        sessions.kw["bind"].dispose()
