"""Load test of the collect REST API: N simulated raters judging over HTTP, on SQLite and on PostgreSQL.

For each database it makes a fresh campaign, starts `collect.api.server` with uvicorn on
127.0.0.1 (a free port, one process), lets the raters loop "next task -> submit" until the
judgment budget or the time limit is reached, and prints judgments/s, submit latency
p50/p99, and judgments acknowledged (HTTP 201) against judgments stored (they must be
equal). Both bounds are hard: raters stop at --judgments or --seconds, whichever first.

In the same run, the same raters drive `bare`: FastAPI and uvicorn as the API runs them,
whose "next" hands out a number and whose "submit" commits one INSERT into a SQLite file
(WAL, synchronous=NORMAL, as the store), with no ORM and no rules. It is the floor of the
work here, so `ratio_to_bare` says how much of the machine's capacity the API gets, on a
machine whose load also moves the absolute figures. The last lines are one JSON object per
database, with the load average (1, 5, 15 minutes) when it finished.

    .venv/bin/python bench/collect_load.py --raters 32 --judgments 1500 --seconds 60
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import socket
import sqlite3
import statistics
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
def api_server(url: str):
    """Run the API with uvicorn on 127.0.0.1 in a child process; yields its base URL, stops it on exit."""
    with uvicorn_server("collect.api.server:create_app", {"PLUMB_DB": url}) as base:  # the factory reads PLUMB_DB
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
def uvicorn_server(factory: str, env: dict, ready_path: str = "/openapi.json"):
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
    ]
    base = f"http://127.0.0.1:{port}"
    with child_server(command, f"{base}{ready_path}", env=env):
        yield base


async def rater(client, token: str, budget: dict, latencies: list[float], deadline: float) -> None:
    """One simulated rater: next task, answer it, until nothing is left, the budget is spent or time is up."""
    headers = {"Authorization": f"Bearer {token}"}
    while budget["left"] > 0 and time.monotonic() < deadline:
        budget["left"] -= 1  # claimed before awaiting, so concurrent raters cannot overshoot the budget
        try:
            task = (await client.get("/api/campaigns/load/next", headers=headers)).json()
            if task is None:
                return
            started = time.perf_counter()
            response = await client.post(
                "/api/campaigns/load/judgments",
                headers=headers,
                json={"assignment_id": task["assignment_id"], "choice": "A slightly better"},
            )
        except httpx.TransportError:  # no answer is no acknowledgement; what the server stored is counted anyway
            budget["errors"] += 1
            continue
        latencies.append(time.perf_counter() - started)
        if response.status_code == 201:
            budget["acknowledged"] += 1


async def drive(base: str, tokens: list[str], *, judgments: int, seconds: float) -> dict:
    """All raters at once against `base`; returns acknowledged count, wall time and submit latencies."""
    budget, latencies = {"left": judgments, "acknowledged": 0, "errors": 0}, []
    limits = httpx.Limits(max_connections=len(tokens))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        started = time.monotonic()
        await asyncio.gather(*(rater(client, token, budget, latencies, started + seconds) for token in tokens))
        wall = time.monotonic() - started
    return {
        "acknowledged": budget["acknowledged"],
        "errors": budget["errors"],
        "wall": wall,
        "latencies": sorted(latencies),
    }


def run(name: str, url: str, args) -> dict:
    """Seed, serve, drive and count one database."""
    print(f"{name}: seeding {args.judgments // OVERLAP + 1} tasks and {args.raters} raters", file=sys.stderr)
    tokens = seed(url, raters=args.raters, tasks=args.judgments // OVERLAP + 1)
    with api_server(url) as base:
        print(f"{name}: {args.raters} raters judging", file=sys.stderr)
        result = asyncio.run(drive(base, tokens, judgments=args.judgments, seconds=args.seconds))
    return summary(name, args, result, stored_judgments(url))


def run_bare(path: str, args) -> dict:
    """Serve and drive the bare app with the same raters and bounds; count what it stored."""
    seed_bare(path)
    with uvicorn_server("collect_load:bare_app", {BARE_DB_ENV: path}) as base:
        print(f"bare: {args.raters} raters judging", file=sys.stderr)
        tokens = [f"bare-{i}" for i in range(args.raters)]
        result = asyncio.run(drive(base, tokens, judgments=args.judgments, seconds=args.seconds))
    return summary("bare", args, result, stored_bare(path))


def summary(name: str, args, result: dict, stored: int) -> dict:
    """The figures of one run, with the load average at its end (other work on the machine moves them)."""
    latencies = result["latencies"] or [float("nan")]
    return {
        "database": name,
        "raters": args.raters,
        "acknowledged": result["acknowledged"],
        "errors": result["errors"],
        "stored": stored,
        "per_second": result["acknowledged"] / result["wall"],
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "load_avg": [round(load, 2) for load in os.getloadavg()],
    }


# (heading, result key, format) of the printed table; errors: requests that got no HTTP answer at all.
COLUMNS = (
    ("database", "database", "<11"),
    ("raters", "raters", ">7"),
    ("judgments/s", "per_second", ">13.1f"),
    ("p50 ms", "p50_ms", ">9.1f"),
    ("p99 ms", "p99_ms", ">9.1f"),
    ("acknowledged", "acknowledged", ">14"),
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
            "acknowledged": result["acknowledged"],
            "stored": result["stored"],
            "ratio_to_bare": round(result["per_second"] / bare, 3) if bare else None,
            "load_avg": result["load_avg"],
        }
        print(json.dumps(line))


def main() -> int:
    """Run the load test on each database and print one line per database."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raters", type=int, default=32, help="concurrent simulated raters (at most 200)")
    parser.add_argument("--judgments", type=int, default=1500, help="stop after this many judgments in all")
    parser.add_argument("--seconds", type=float, default=60, help="stop after this long per database")
    parser.add_argument(
        "--databases", default="bare,sqlite,postgresql", help="comma-separated: bare, sqlite, postgresql"
    )
    args = parser.parse_args()
    args.raters = min(args.raters, 200)
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
    return 0 if all(r["acknowledged"] == r["stored"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
