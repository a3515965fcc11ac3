"""Kill -9 under load: every judgment the server acknowledged is in the store afterwards, as it was sent.

Raters judge at once, each in a thread with their own account, through the REST API (`plumb collect serve-api`)
or through the page's own answer event (`plumb collect serve`, over Gradio's HTTP API with a logged-in session),
on SQLite and on PostgreSQL. The server is SIGKILLed mid-load three times and restarted on the same database;
after the last kill the store is read directly: every acknowledged judgment is stored with the values sent, any
other stored judgment is one whose answer was lost to a kill, no task is over its overlap, no rater has a task
twice. See tests/support/crash.py.
"""

from collections.abc import Callable

import pytest

from tests.support.crash import (
    REPO,
    Launcher,
    Ledger,
    Server,
    forget_judgment,
    page_rater,
    rest_rater,
    run_with_kills,
    seed_crash_campaign,
    store_problems,
)

KILLS = 3
# (raters, tasks, raters per task) of each way in: a bounded number of judgments; the page's events are slower.
LOADS = {"rest": (4, 20, 2), "page": (3, 8, 2)}


@pytest.fixture(scope="module")
def launcher():
    """The process that forks the servers, its imports done once for the module's tests."""
    launcher = Launcher()
    yield launcher
    launcher.close()


def server_command(surface: str, db_url: str, output_dir) -> Callable[[int], list[str]]:
    """The `plumb` command line serving `surface` (rest: the API alone; page: the page and the API), for a port."""
    if surface == "rest":
        return lambda port: ["collect", "serve-api", "--db", db_url, "--port", str(port)]
    config = str(REPO / "configs" / "collect" / "serve.yaml")
    return lambda port: [
        *("collect", "serve", "--config", config, "--db", db_url),
        *("--port", str(port), "--output_dir", str(output_dir)),
    ]


@pytest.mark.parametrize("surface", ["rest", "page"])
def test_acknowledged_judgments_survive_kill_9_under_load(launcher, db_url, surface, tmp_path):
    raters, tasks, overlap = LOADS[surface]
    accounts = seed_crash_campaign(db_url, prompts=tasks, raters=raters, overlap=overlap)
    server = Server(launcher, server_command(surface, db_url, tmp_path / "out"), tmp_path / "server.log")
    ledger = Ledger()
    rater = rest_rater if surface == "rest" else page_rater
    crowd = [
        rater(server, ledger, name, token if surface == "rest" else password)
        for name, (password, token) in accounts.items()
    ]

    kills = run_with_kills(server, crowd, ledger, kills=KILLS, total=tasks * overlap)

    assert not ledger.errors, "\n".join(ledger.errors) + server.tail()
    assert not ledger.refused, "\n".join(f"{sent}: {detail}" for sent, detail in ledger.refused)
    assert kills == KILLS, f"the raters finished before the last kill: {ledger.summary()}"
    problems, counts = store_problems(db_url, ledger)
    print(f"{surface}: {kills} kills under load, {counts}")  # shown with -s: what the kills caught
    assert problems == [], f"{counts}\n" + "\n".join(problems)
    # Every task has its overlap once the raters are done: no answer was lost to a kill for good.
    assert counts["stored"] == tasks * overlap, counts

    # The check sees a lost commit: an acknowledged judgment taken out of the store behind the server's back.
    forget_judgment(db_url, ledger.acknowledged[0].rationale)
    problems, _ = store_problems(db_url, ledger)
    assert f"acknowledged but not stored: {ledger.acknowledged[0]}" in problems, problems
