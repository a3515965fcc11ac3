"""Backups of the store taken while it is in use, and restores that never leave half a database.

SQLite: SQLite's online backup API copies the file in one read transaction, a consistent
snapshot that in WAL mode does not hold up the server's writes; the backup is one plain
SQLite file. PostgreSQL: `pg_dump` in its custom format (a snapshot too) and `pg_restore`,
run from the client programs of the server's major version or a newer one.

A restore refuses a database that holds any rows unless forced. SQLite: the backup is
copied into a temporary file beside the target and checked there, then renamed onto a new
path, or copied into an existing database in one SQLite transaction. PostgreSQL:
`pg_restore --single-transaction`. Either way a failure leaves the target as it was.
"""

import contextlib
import os
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path

from sqlalchemy import inspect, make_url, text

from collect.store import StoreError, make_engine, normalize_url, schema_problem
from collect.store.engine import require_existing

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
POSTGRES_PROGRAMS = Path("/usr/lib/postgresql")  # Debian's layout: one bin/ per installed major version
SQLITE_TIMEOUT_S = 30


class BackupError(StoreError):
    """A backup or restore cannot be done as asked; the message says why."""


def backup_store(db: str | None, output: str | os.PathLike) -> dict:
    """Write a backup of the database `db` to `output` (replaced whole, never half-written); returns a summary."""
    require_existing(db)  # SQLite's backup API would make an empty database of a mistyped path, and back that up
    url = make_url(normalize_url(db))
    output = Path(output).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "sqlite":
        _backup_sqlite(_sqlite_path(url), output)
    else:
        _backup_postgres(url, output)
    return {"database": url.render_as_string(hide_password=True), "backup": str(output), "bytes": output.stat().st_size}


def restore_store(backup: str | os.PathLike, db: str | None, *, force: bool = False) -> dict:
    """Restore `backup` into the database `db`; a database with rows in it is replaced only when `force`."""
    backup = Path(backup).expanduser()
    url = make_url(normalize_url(db))
    kind, target_kind = backup_kind(backup), url.get_backend_name()
    if kind != target_kind:
        raise BackupError(f"{backup}: a {kind} backup cannot be restored into a {target_kind} database")
    engine = make_engine(db)
    try:
        new_file = kind == "sqlite" and not _sqlite_path(url).exists()
        if not force and not new_file and _holds_rows(engine):
            where = url.render_as_string(hide_password=True)
            raise BackupError(f"{where} is not empty: restoring would replace it (add --force to overwrite it)")
        if kind == "sqlite":
            engine.dispose()  # no pooled connection of ours may hold the file while it is replaced
            _restore_sqlite(backup, _sqlite_path(url))
        else:
            _restore_postgres(backup, url)
        problem = schema_problem(engine)
    finally:
        engine.dispose()
    return {"database": url.render_as_string(hide_password=True), "backup": str(backup), "schema": problem or "current"}


def backup_kind(path: Path) -> str:
    """`sqlite` or `postgresql`, read from the file's first bytes; `BackupError` for anything else."""
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise BackupError(f"{path}: cannot read the backup ({error.strerror})") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path}: not a Plumb backup (neither a SQLite file nor a pg_dump custom-format archive)")


def _sqlite_path(url) -> Path:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise BackupError(f"{url}: only a SQLite database file can be backed up or restored")
    return Path(url.database)


def _holds_rows(engine) -> bool:
    # An initialized but empty database (only the schema version) may be restored over without --force.
    tables = [name for name in inspect(engine).get_table_names() if name != "alembic_version"]
    with engine.connect() as connection:
        return any(connection.execute(text(f'SELECT 1 FROM "{name}" LIMIT 1')).first() for name in tables)


# SQLite


def _backup_sqlite(source: Path, output: Path) -> None:
    if not source.is_file():
        raise BackupError(f"{source}: no such database file")
    with _temporary_beside(output, "partial") as partial:
        with _sqlite(source) as reader, _sqlite(partial) as writer:
            reader.backup(writer)  # all pages in one step: one read transaction, a consistent snapshot
            writer.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        _check_sqlite(partial, what=str(source))
        _replace(partial, output)


def _restore_sqlite(backup: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with _temporary_beside(target, "restoring") as restoring:
        with _sqlite(backup) as reader, _sqlite(restoring) as writer:
            reader.backup(writer)
        _check_sqlite(restoring, what=str(backup))
        if target.exists():
            # Into the live file through SQLite itself: one transaction of the target, WAL and readers kept right.
            with _sqlite(restoring) as reader, _sqlite(target) as writer:
                reader.backup(writer)
        else:
            for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
                stale.unlink(missing_ok=True)  # a leftover WAL would be replayed onto the new file
            _replace(restoring, target)


def _check_sqlite(path: Path, *, what: str) -> None:
    with _sqlite(path) as connection:
        try:
            result = connection.execute("PRAGMA quick_check").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise BackupError(f"{what}: not a readable SQLite database ({error})") from None
    if result != "ok":
        raise BackupError(f"{what}: the copy fails SQLite's check ({result})")


@contextlib.contextmanager
def _sqlite(path: Path):
    try:
        connection = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S)
    except sqlite3.Error as error:
        raise BackupError(f"{path}: cannot open ({error})") from None
    try:
        yield connection
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path}: {error}") from None
    finally:
        connection.close()


# PostgreSQL


def _backup_postgres(url, output: Path) -> None:
    pg_dump = postgres_program("pg_dump", _server_major(url))
    with _temporary_beside(output, "partial") as partial:
        _run_postgres([pg_dump, "--format=custom", f"--file={partial}", f"--dbname={_libpq_uri(url)}"], url)
        _replace(partial, output)


def _restore_postgres(backup: Path, url) -> None:
    pg_restore = postgres_program("pg_restore", _server_major(url))
    command = [pg_restore, "--clean", "--if-exists", "--single-transaction", "--exit-on-error"]
    command += ["--no-owner", "--no-privileges", f"--dbname={_libpq_uri(url)}", str(backup)]
    _run_postgres(command, url)


def postgres_program(name: str, server_major: int) -> str:
    """`pg_dump` or `pg_restore` of the server's major version, else the oldest newer one, else the one on PATH."""
    installed = {}
    for directory in POSTGRES_PROGRAMS.glob("*/bin"):
        if directory.parent.name.isdigit() and (directory / name).is_file():
            installed[int(directory.parent.name)] = directory / name
    usable = sorted(version for version in installed if version >= server_major)  # older ones refuse the server
    if usable:
        return str(installed[usable[0]])
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install PostgreSQL {server_major}'s client programs")
    return found


def _server_major(url) -> int:
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql("SHOW server_version_num").scalar()) // 10_000
    finally:
        engine.dispose()


def _libpq_uri(url) -> str:
    # The password travels in the environment, not on a command line other users can read.
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def _run_postgres(command: list[str], url) -> None:
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        message = " ".join(result.stderr.strip().splitlines()[-3:]) or f"exit status {result.returncode}"
        raise BackupError(f"{Path(command[0]).name} failed: {message}")


# Files


@contextlib.contextmanager
def _temporary_beside(path: Path, suffix: str):
    # Beside the destination, so the final rename stays on one file system and is atomic.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.{suffix}")
    try:
        yield temporary
    finally:
        for leftover in (temporary, Path(f"{temporary}-journal"), Path(f"{temporary}-wal"), Path(f"{temporary}-shm")):
            leftover.unlink(missing_ok=True)


def _replace(source: Path, destination: Path) -> None:
    # fsync the file, rename it, fsync the folder: after a crash the destination is the old file or the new one.
    with source.open("rb") as file:
        os.fsync(file.fileno())
    os.replace(source, destination)
    directory = os.open(destination.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
