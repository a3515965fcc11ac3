"""Judgments from people: serve the rating app on the round's campaign and wait until the round's target is met.

The judgments go to the store as they are submitted, so stopping the loop (Ctrl-C) loses
nothing: a rerun serves the same campaign again and counts what is already there. With
`serve: none` the loop only watches the store, for a server already running on it.
"""

import logging
import threading
import time
from contextlib import contextmanager

from sqlalchemy import func, select

from loop.context import LoopRun

logger = logging.getLogger(__name__)


def label_target(run: LoopRun, campaign: str) -> int:
    """Judgments the round waits for: `labels_per_round`, else every pool task judged by its raters_per_task."""
    if run.args.labels_per_round:
        return run.args.labels_per_round
    from collect.domain.campaign import spec_of
    from collect.store import Task, campaign_by_name, opened_store

    with opened_store(run.db) as sessions, sessions() as session:
        stored = campaign_by_name(session=session, name=campaign)
        tasks = session.scalar(
            select(func.count(Task.id)).where(
                Task.campaign_id == stored.id, Task.source == "pool", Task.is_gold.is_(False)
            )
        )
        return tasks * spec_of(stored).raters_per_task


def live_count(sessions, campaign: str) -> dict[str, int]:
    """Live judgments of the campaign's pool tasks (gold checks left out) by rater kind (human, simulated, ...)."""
    from collect.store import Rater, Task, campaign_by_name, live_judgments_query

    with sessions() as session:
        stored = campaign_by_name(session=session, name=campaign)
        query = live_judgments_query(stored.id).where(Task.source == "pool", Task.is_gold.is_(False)).subquery()
        rows = session.execute(
            select(Rater.kind, func.count()).join(query, query.c.rater_id == Rater.id).group_by(Rater.kind)
        ).all()
    return {kind: count for kind, count in rows}


def wait_for_people(run: LoopRun, round_number: int, campaign: str) -> dict:
    """Serve the campaign (as the config says) and return once its live judgments reach the round's target."""
    from tqdm.auto import tqdm

    from collect.store import opened_store

    target = label_target(run, campaign)
    with opened_store(run.db) as sessions, serving(run, round_number, campaign):
        with tqdm(total=target, desc=f"round {round_number}: judgments", unit="judgment") as progress:
            while (done := sum(live_count(sessions, campaign).values())) < target:
                progress.update(done - progress.n)
                time.sleep(run.args.poll_seconds)
            progress.update(done - progress.n)
        by_kind = live_count(sessions, campaign)
    return {"mode": "people", "target": target, "judgments": sum(by_kind.values()), "by_kind": by_kind}


@contextmanager
def serving(run: LoopRun, round_number: int, campaign: str):
    """Run the app (or the REST API alone) on the run's store in a background thread while the block runs."""
    if run.args.serve == "none":
        logger.info("Waiting for judgments of campaign '%s' from the server already running on %s", campaign, run.db)
        yield None
        return
    import uvicorn

    from collect.serve import ServeArguments, _check_port_free

    _check_port_free(run.args.host, run.args.port)
    if run.args.serve == "app":
        from collect.serve import build_server

        app = build_server(
            ServeArguments(
                campaign=campaign,
                db=run.db,
                host=run.args.host,
                port=run.args.port,
                output_dir=str(run.stage_dir(round_number, "judgments") / "serve"),
            )
        )
    else:
        from collect.api.server import create_app

        app = create_app(run.db)
    server = uvicorn.Server(
        uvicorn.Config(app, host=run.args.host, port=run.args.port, log_level="warning", timeout_graceful_shutdown=5)
    )
    thread = threading.Thread(target=server.run, name="plumb-loop-server", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    url = f"http://{run.args.host}:{run.args.port}/"
    print(
        f"Round {round_number}: raters judge campaign '{campaign}' at {url} (REST API at {url}api). "
        f"Add raters with `plumb collect add-rater NAME --db {run.db}`; Ctrl-C stops, a rerun continues.",
        flush=True,
    )
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=10)
