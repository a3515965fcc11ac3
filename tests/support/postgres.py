"""A throwaway PostgreSQL server in a temporary directory, for the tests and the benchmarks.

It runs PostgreSQL's own `initdb` and `pg_ctl`, listens only on a unix socket inside
its directory (no TCP port, nothing reachable from outside), trusts the local user
`plumb`, and is stopped and deleted on exit. PostgreSQL refuses to run as root, so under
root the server runs as the unprivileged user `nobody`.
"""

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

SERVER_USER = "nobody"


def postgres_tool(name: str) -> str | None:
    """The path of a PostgreSQL server program (newest installed version first), or None."""
    for directory in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (directory / name).is_file():
            return str(directory / name)
    return shutil.which(name)


def postgres_available() -> bool:
    """True when the server programs `initdb` and `pg_ctl` are installed."""
    return bool(postgres_tool("initdb") and postgres_tool("pg_ctl"))


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def temporary_postgres(*, max_connections: int = 200) -> Iterator[str]:
    """Start a server; yields a URL template with `{name}` for the database name (see `create_database`)."""
    initdb, pg_ctl = postgres_tool("initdb"), postgres_tool("pg_ctl")
    if not (initdb and pg_ctl):
        raise FileNotFoundError("PostgreSQL server programs (initdb, pg_ctl) not found: `apt-get install postgresql`")
    # Directly under the system temp dir: a root-private parent (like pytest's) would lock `nobody` out.
    root = Path(tempfile.mkdtemp(prefix="plumb-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user=SERVER_USER)
    data = root / "data"
    subprocess.run(
        _as_server_user([initdb, "-D", str(data), "-A", "trust", "-U", "plumb", "-E", "UTF8", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    # fsync off: the data is thrown away at exit, so durability buys nothing here.
    options = f"-k {root} -c listen_addresses='' -c fsync=off -c max_connections={max_connections}"
    subprocess.run(
        _as_server_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://plumb@/{{name}}?host={root}"
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str) -> str:
    """Create an empty, uniquely named database on a `temporary_postgres` server; returns its URL."""
    name = f"plumb_{uuid.uuid4().hex[:12]}"
    _administer(server_url, f'CREATE DATABASE "{name}"')
    return server_url.format(name=name)


def drop_database(server_url: str, database_url: str) -> None:
    """Drop a database made by `create_database`, closing whatever connections are still open to it."""
    name = database_url.split("@/")[1].split("?")[0]
    _administer(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _administer(server_url: str, statement: str) -> None:
    import psycopg

    # CREATE/DROP DATABASE cannot run inside a transaction, hence autocommit.
    with psycopg.connect(
        host=server_url.split("host=")[1], user="plumb", dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(statement)


def cut_off_database(server_url: str, database_url: str) -> None:
    """Make a database unreachable, as if its server were down: close its connections and refuse new ones."""
    name = database_url.split("@/")[1].split("?")[0]
    _administer(server_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    _administer(server_url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
