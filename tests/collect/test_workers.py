"""Several API processes on one PostgreSQL behind one port (`serve-api --workers 2`): raters hitting both at once
never get a task past its overlap, nor one task twice, and every acknowledged judgment is stored."""

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import select

from collect.store import Assignment, Task, create_rater, live_judgments_query, make_engine, session_factory, upgrade
from tests.support.campaigns import seed_campaign
from tests.support.postgres import create_database, drop_database
from tests.support.serving import auth, free_port

REPO = Path(__file__).resolve().parents[2]
RATERS, TASKS, OVERLAP = 16, 24, 3


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (uvicorn's workers under its supervisor)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found


def judge_until_done(base_url: str, token: str, acknowledged: list, errors: list) -> None:
    """One rater: next task, submit, until nothing is left; a new connection each time, so both workers serve."""
    while True:
        with httpx.Client(base_url=base_url, timeout=120) as client:
            task = client.get("/api/campaigns/demo/next", headers=auth(token))
        if task.status_code != 200:
            errors.append(task.text)
            return
        if task.json() is None:
            return
        body = {"assignment_id": task.json()["assignment_id"], "choice": "A better"}
        with httpx.Client(base_url=base_url, timeout=120) as client:
            answer = client.post("/api/campaigns/demo/judgments", json=body, headers=auth(token))
        if answer.status_code != 201:
            errors.append(answer.text)
            return
        acknowledged.append(answer.json()["judgment_id"])


def test_two_worker_processes_never_double_assign(postgres_server):
    url = create_database(postgres_server)
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_campaign(sessions, prompts=TASKS, raters_per_task=OVERLAP, max_raters_per_task=OVERLAP)
    with sessions.begin() as session:
        tokens = [create_rater(session=session, name=f"r{i}")[1] for i in range(RATERS)]
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "plumb",
        "collect",
        "serve-api",
        "--db",
        url,
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # two processes importing the app: seconds, more on a loaded machine
            try:
                if httpx.get(f"{base_url}/openapi.json", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert len(children_of(server.pid)) >= 2, "uvicorn did not start two workers"
        acknowledged, errors = [], []
        raters = [threading.Thread(target=judge_until_done, args=(base_url, t, acknowledged, errors)) for t in tokens]
        for thread in raters:
            thread.start()
        for thread in raters:
            thread.join()
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert errors == []
    with sessions() as session:
        live = session.scalars(live_judgments_query(1)).all()
        leases = session.execute(select(Assignment.task_id, Assignment.rater_id)).all()
        overlaps = dict(session.execute(select(Task.id, Task.target_overlap)).all())
    # Every task filled to its overlap and no further, each by different raters; nothing acknowledged was lost.
    assert sorted(j.id for j in live) == sorted(acknowledged) and len(live) == TASKS * OVERLAP
    assert Counter(j.task_id for j in live) == {task: overlaps[task] for task in overlaps}
    assert len(set(leases)) == len(leases) and len({(j.task_id, j.rater_id) for j in live}) == len(live)
    engine.dispose()
    drop_database(postgres_server, url)
