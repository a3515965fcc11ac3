"""Load test of the collect REST API: N simulated raters judging over HTTP, on SQLite and on PostgreSQL.

For each database it makes a fresh campaign, starts `collect.api.server` with uvicorn on
127.0.0.1 (a free port; `--workers` processes), and lets the raters loop "next task -> submit"
for `--seconds`. The load comes from wrk (Debian's package `wrk`; its script is
`collect_load.lua`): one connection per rater, each with its own token. wrk is C and cheap, so
the figures are the server's and not the load generator's, which shares the machine's cores.
It prints judgments/s, latency p50/p99 over all requests (next and submit), and judgments
acknowledged (HTTP 201) against judgments stored: stored may exceed acknowledged only by the
submits the time limit cut off mid-request (`in_flight`), never fall short of it.

In the same run, the same raters drive `bare`: FastAPI and uvicorn as the API runs them,
whose "next" hands out a number and whose "submit" commits one INSERT into a SQLite file
(WAL, synchronous=NORMAL, as the store), with no ORM and no rules. It is the floor of the
work here, so `ratio_to_bare` says how much of the machine's capacity the API gets, on a
machine whose load also moves the absolute figures. The last lines are one JSON object per
database, with the load average (1, 5, 15 minutes) when it finished.

    .venv/bin/python bench/collect_load.py --raters 32 --seconds 20
"""

import argparse
import contextlib
import itertools
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from collect.domain.campaign import as_definition, campaign_from_dict  # noqa: E402
from collect.store import (  # noqa: E402
    add_candidate,
    add_prompt,
    build_tasks,
    create_campaign,
    create_rater,
    ensure_policy,
    live_judgments_query,
    make_engine,
    session_factory,
    upgrade,
)
from tests.support.postgres import create_database, postgres_available, temporary_postgres  # noqa: E402

OVERLAP = 3
WRK_SCRIPT = Path(__file__).with_suffix(".lua")
BARE_DB_ENV = "PLUMB_BENCH_BARE_DB"  # the SQLite file the bare app writes to (its factory reads it)


def seed(url: str, *, raters: int, tasks: int) -> list[str]:
    """A pairwise campaign `load` with `tasks` tasks (3 raters each) and `raters` raters; returns their tokens."""
    engine = make_engine(url)
    upgrade(engine)
    spec = campaign_from_dict({"name": "load", "raters_per_task": OVERLAP, "max_raters_per_task": OVERLAP})
    with session_factory(engine).begin() as session:
        campaign = create_campaign(session=session, name="load", kind="pairwise", definition=as_definition(spec))
        policies = [ensure_policy(session=session, campaign=campaign, name=name) for name in ("a", "b")]
        for i in range(tasks):
            prompt = add_prompt(
                session=session,
                campaign=campaign,
                external_id=str(i),
                messages=[{"role": "user", "content": f"prompt {i}"}],
            )
            for policy in policies:
                add_candidate(
                    session=session,
                    prompt=prompt,
                    policy=policy,
                    completion=[{"role": "assistant", "content": f"answer {i} {policy.name}"}],
                )
        build_tasks(session=session, campaign=campaign, overlap=OVERLAP)
        tokens = [create_rater(session=session, name=f"r{i}")[1] for i in range(raters)]
    engine.dispose()
    return tokens


def stored_judgments(url: str) -> int:
    """Live judgments in the database, counted directly."""
    engine = make_engine(url)
    with session_factory(engine)() as session:
        count = session.scalar(select(func.count()).select_from(live_judgments_query(1).subquery()))
    engine.dispose()
    return count


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def child_server(
    command: list[str], ready_url: str, *, env: dict | None = None, timeout: float = 60, quiet: bool = False
):
    """Run a server `command` (bound to 127.0.0.1) in a child process; yields once `ready_url` answers 200."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    output = subprocess.DEVNULL if quiet else None
    server = subprocess.Popen(command, env=env, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the server did not start within {timeout:.0f} s: {' '.join(command)}")
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextlib.contextmanager
def api_server(url: str, *, workers: int = 1):
    """Run the API with uvicorn on 127.0.0.1 in a child process; yields its base URL, stops it on exit."""
    factory = "collect.api.server:create_app"  # the factory reads PLUMB_DB
    with uvicorn_server(factory, {"PLUMB_DB": url}, workers=workers) as base:
        yield base


def bare_app():
    """The baseline app (a uvicorn factory): FastAPI, a counter for "next", one committed INSERT per "submit"."""
    from fastapi import FastAPI

    path = os.environ[BARE_DB_ENV]
    writer = threading.Lock()  # one writer at a time, as the store's own turn-taking on SQLite
    numbers = itertools.count(1)
    local = threading.local()

    def connection() -> sqlite3.Connection:
        if not hasattr(local, "db"):  # one connection per worker thread, opened as the store opens SQLite
            local.db = sqlite3.connect(path, isolation_level=None, timeout=30)
            local.db.execute("PRAGMA journal_mode=WAL")
            local.db.execute("PRAGMA synchronous=NORMAL")
        return local.db

    app = FastAPI()

    @app.get("/api/campaigns/{name}/next")
    def next_task(name: str) -> dict:
        return {"assignment_id": next(numbers)}

    @app.post("/api/campaigns/{name}/judgments", status_code=201)
    def submit(name: str, body: dict) -> dict:
        db = connection()
        with writer:
            db.execute("BEGIN IMMEDIATE")
            cursor = db.execute(
                "INSERT INTO judgments (assignment_id, choice) VALUES (?, ?)", (body["assignment_id"], body["choice"])
            )
            db.execute("COMMIT")  # committed before the answer, as the API does
        return {"judgment_id": cursor.lastrowid}

    return app


def seed_bare(path: str) -> None:
    """The bare app's one table, in a new SQLite file in WAL mode."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE judgments (id INTEGER PRIMARY KEY, assignment_id INTEGER, choice TEXT)")
        db.commit()


def stored_bare(path: str) -> int:
    """Rows the bare app stored, counted directly."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT count(*) FROM judgments").fetchone()[0]


@contextlib.contextmanager
def uvicorn_server(factory: str, env: dict, *, workers: int = 1, ready_path: str = "/openapi.json"):
    """Run the app `factory` with uvicorn on 127.0.0.1 in a child process, as the API is run; yields its base URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--app-dir",
        str(Path(__file__).resolve().parent),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        "120",
        "--workers",
        str(workers),
    ]
    base = f"http://127.0.0.1:{port}"
    with child_server(command, f"{base}{ready_path}", env=env):
        yield base


def drive(base: str, tokens: list[str], *, seconds: float) -> dict:
    """All raters at once against `base` for `seconds`, through wrk; its figures (see collect_load.lua)."""
    with tempfile.NamedTemporaryFile("w", suffix=".tokens") as listed:
        listed.write("\n".join(tokens) + "\n")
        listed.flush()
        raters = str(len(tokens))
        command = ["wrk", "-t", raters, "-c", raters, "-d", f"{seconds:.0f}s", "--timeout", "30s"]
        command += ["-s", str(WRK_SCRIPT), base, "--", listed.name, "load"]
        finished = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(finished.stdout.strip().splitlines()[-1])


def run(name: str, url: str, args) -> dict:
    """Seed, serve, drive and count one database."""
    print(f"{name}: seeding {args.tasks} tasks and {args.raters} raters", file=sys.stderr)
    tokens = seed(url, raters=args.raters, tasks=args.tasks)
    with api_server(url, workers=args.workers) as base:
        print(f"{name}: {args.raters} raters judging for {args.seconds:.0f} s", file=sys.stderr)
        result = drive(base, tokens, seconds=args.seconds)
    return summary(name, args, result, stored_judgments(url))


def run_bare(path: str, args) -> dict:
    """Serve and drive the bare app with the same raters and bounds; count what it stored."""
    seed_bare(path)
    with uvicorn_server("collect_load:bare_app", {BARE_DB_ENV: path}, workers=args.workers) as base:
        print(f"bare: {args.raters} raters judging for {args.seconds:.0f} s", file=sys.stderr)
        result = drive(base, [f"bare-{i}" for i in range(args.raters)], seconds=args.seconds)
    return summary("bare", args, result, stored_bare(path))


def summary(name: str, args, result: dict, stored: int) -> dict:
    """The figures of one run, with the load average at its end (other work on the machine moves them)."""
    return {
        "database": name,
        "raters": args.raters,
        "workers": args.workers,
        "acknowledged": result["acknowledged"],
        "in_flight": result["in_flight"],
        "errors": result["socket_errors"] + result["refused"],
        "stored": stored,
        "per_second": result["acknowledged"] / result["seconds"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "load_avg": [round(load, 2) for load in os.getloadavg()],
    }


def nothing_lost(result: dict) -> bool:
    """Every acknowledged judgment stored, and nothing stored beyond the submits cut off at the time limit."""
    return result["acknowledged"] <= result["stored"] <= result["acknowledged"] + result["in_flight"]


# (heading, result key, format) of the printed table; errors: submits refused, and requests with no HTTP answer.
COLUMNS = (
    ("database", "database", "<11"),
    ("raters", "raters", ">7"),
    ("judgments/s", "per_second", ">13.1f"),
    ("p50 ms", "p50_ms", ">9.1f"),
    ("p99 ms", "p99_ms", ">9.1f"),
    ("acknowledged", "acknowledged", ">14"),
    ("in flight", "in_flight", ">11"),
    ("stored", "stored", ">8"),
    ("errors", "errors", ">8"),
)


def print_table(results: list[dict]) -> None:
    """One line per database under a heading line."""
    print("".join(f"{heading:{spec.split('.')[0]}}" for heading, _, spec in COLUMNS))
    for result in results:
        print("".join(f"{result[key]:{spec}}" for _, key, spec in COLUMNS))


def print_json_lines(results: list[dict]) -> None:
    """One JSON object per database, last: its figures, its ratio to the bare app's judgments/s, the load average."""
    bare = next((r["per_second"] for r in results if r["database"] == "bare"), None)
    for result in results:
        line = {
            "db": result["database"],
            "judgments_per_s": round(result["per_second"], 1),
            "p50_ms": round(result["p50_ms"], 1),
            "p99_ms": round(result["p99_ms"], 1),
            "workers": result["workers"],
            "acknowledged": result["acknowledged"],
            "in_flight_at_stop": result["in_flight"],
            "stored": result["stored"],
            "ratio_to_bare": round(result["per_second"] / bare, 3) if bare else None,
            "load_avg": result["load_avg"],
        }
        print(json.dumps(line))


def main() -> int:
    """Run the load test on each database and print one line per database."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raters", type=int, default=32, help="concurrent simulated raters (at most 200)")
    parser.add_argument("--seconds", type=float, default=20, help="how long the raters judge, per database")
    parser.add_argument("--tasks", type=int, default=6000, help="tasks in each campaign (3 judgments each)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes, for the API and bare")
    parser.add_argument(
        "--databases", default="bare,sqlite,postgresql", help="comma-separated: bare, sqlite, postgresql"
    )
    args = parser.parse_args()
    args.raters = min(args.raters, 200)
    if shutil.which("wrk") is None:
        parser.error("the load comes from wrk, which is not installed: apt-get install wrk")
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        if "bare" in args.databases:
            results.append(run_bare(f"{scratch}/bare.sqlite", args))
        if "sqlite" in args.databases:
            results.append(run("sqlite", f"sqlite:///{scratch}/load.sqlite", args))
        if "postgresql" in args.databases:
            if not postgres_available():
                print("postgresql: skipped, no initdb/pg_ctl on this machine", file=sys.stderr)
            else:
                with temporary_postgres() as server:
                    results.append(run("postgresql", create_database(server), args))
    print_table(results)
    print_json_lines(results)
    return 0 if all(nothing_lost(r) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
