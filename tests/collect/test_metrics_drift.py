"""`/metrics` through the real app on a small store built by hand: every series (judgments by campaign, task kind and
rater kind, seconds per judgment, tie, both-bad and position-bias shares, gold accuracy, the reward model's agreement
over the drift window, request latency, the process) has the value worked out below; and `/healthz`."""

import platform
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from collect.api.server import create_app
from collect.services import drift
from collect.store import Assignment, Rater, Task, create_rater, record_judgment, retract_judgment
from collect.store.models import utcnow
from tests.support.campaigns import seed_campaign
from tests.support.postgres import cut_off_database
from tests.support.serving import auth

# Campaign "demo": tasks 1..6, one per prompt, candidates in canonical order [sft, dpo]; tasks 1-2 are gold with sft
# the better (a positive preference is right). The reward model preferred canonical candidate PRELABELS[task].
PRELABELS = {3: 0, 4: 1, 5: 0}
RATERS = {"ana": "human", "bob": "human", "sim": "simulated", "auto": "model"}
# In submission order: (rater, task, order shown (display position -> canonical index), answer, seconds).
# Shown left is canonical order[0]; a positive preference picks canonical 0.
JUDGMENTS = [
    ("ana", 1, [0, 1], {"preference": 2}, 4.0),  # left; gold right
    ("ana", 2, [1, 0], {"preference": 1}, 12.0),  # right; gold right
    ("ana", 3, [0, 1], {"preference": -3}, 25.0),  # right; not the model's (0)
    ("ana", 4, [1, 0], {"preference": 0}, 40.0),  # tie
    ("ana", 5, [0, 1], {"both_bad": True}, 0.5),  # both bad
    ("bob", 1, [1, 0], {"preference": -1}, 3.0),  # left; gold wrong
    ("bob", 3, [1, 0], {"preference": 1}, 8.0),  # right; the model's
    ("bob", 4, [0, 1], {"preference": -2}, None),  # right; the model's (1); not timed
    ("bob", 6, [0, 1], {"preference": 1}, 6.0),  # left, then edited:
    ("bob", 6, [0, 1], {"preference": -1}, 9.0),  # right (an edit: not a new submission)
    ("bob", 2, [0, 1], {"preference": 1}, 7.0),  # then undone: submitted, but not live
    ("sim", 1, [0, 1], {"preference": 1}, 2.0),  # left; gold right
    ("sim", 3, [0, 1], {"preference": -1}, 2.0),  # right; not the model's
    ("auto", 5, [0, 1], {"preference": 1}, None),  # left, the model's own auto-label
]
UNDONE = ("bob", 2)


def seed(sessions) -> None:
    """Campaign "demo" (pairwise, reward model rm-demo) with the JUDGMENTS above, and "ranked" (ranking, 3
    candidates) with one judgment of ana's, ranks 1-2-3 in 50 s."""
    seed_campaign(sessions, name="demo", prompts=6, gold=2, raters_per_task=3, max_raters_per_task=3, reward_model="rm")
    seed_campaign(sessions, name="ranked", kind="ranking", prompts=1, policies=("a", "b", "c"))
    with sessions.begin() as session:
        raters = {name: create_rater(session=session, name=name, kind=kind)[0] for name, kind in RATERS.items()}
        demo = session.scalars(select(Task).where(Task.kind == "pairwise").order_by(Task.id)).all()
        tasks = {number: task for number, task in enumerate(demo, start=1)}
        for number, preferred in PRELABELS.items():
            tasks[number].prelabel = {"preferred": preferred, "confidence": 0.9, "model": "rm"}
        for name, number, order, answer, seconds in JUDGMENTS:
            judgment = _answer(session, raters[name], tasks[number], order, seconds, answer)
            if (name, number) == UNDONE:
                retract_judgment(session=session, judgment=judgment)
        ranking = session.scalar(select(Task).where(Task.kind == "ranking"))
        _answer(session, raters["ana"], ranking, [2, 0, 1], 50.0, {"ranks": [1, 2, 3]})


def _answer(session, rater: Rater, task: Task, order: list[int], seconds, answer: dict):
    assignment = session.scalar(
        select(Assignment).where(Assignment.task_id == task.id, Assignment.rater_id == rater.id)
    )
    if assignment is None:  # the second answer of a rater to a task is an edit of the first, on the same lease
        assignment = Assignment(task_id=task.id, rater_id=rater.id, candidate_order=order, expires_at=utcnow())
        session.add(assignment)
        session.flush()
    return record_judgment(session=session, assignment=assignment, seconds_spent=seconds, **answer)


def scrape(client) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted (label, value) pairs: value}} of one `/metrics` scrape, parsed by prometheus_client."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def series(labels: tuple[str, ...], rows: dict[tuple, float]) -> dict[tuple, float]:
    """The expected samples of a family: {label values: value} as `scrape` keys them (sorted label pairs)."""
    return {tuple(sorted(zip(labels, key))): value for key, value in rows.items()}


@pytest.fixture
def seeded(store, db_url):
    """(TestClient of the app with /metrics public, the database URL) on the seeded store, SQLite and PostgreSQL."""
    engine, sessions = store
    seed(sessions)
    engine.dispose()
    with TestClient(create_app(db_url, metrics_public=True)) as client:
        yield client, db_url


def test_progress_and_judgments_by_campaign_task_kind_and_rater_kind(seeded):
    client, _ = seeded
    got = scrape(client)
    # demo: t3 has its 3 raters (ana, bob, sim); t4, t5 have 2, t6 1: open. Live: 9 human + 2 simulated + 1 model.
    assert got["plumb_tasks"] == series(("campaign",), {("demo",): 6, ("ranked",): 1})
    assert got["plumb_gold_tasks"] == series(("campaign",), {("demo",): 2, ("ranked",): 0})
    assert got["plumb_complete_tasks"] == series(("campaign",), {("demo",): 1, ("ranked",): 0})
    assert got["plumb_open_tasks"] == series(("campaign",), {("demo",): 3, ("ranked",): 1})
    assert got["plumb_judgments"] == series(("campaign",), {("demo",): 12, ("ranked",): 1})
    assert got["plumb_raters"] == series(("campaign",), {("demo",): 4, ("ranked",): 1})
    # First submissions: ana 5, bob 5 (t1, t3, t4, t6, and t2 though undone; the edit of t6 is not one).
    labels = ("campaign", "kind", "rater_kind")
    assert got["plumb_judgments_submitted_total"] == series(
        labels,
        {
            ("demo", "pairwise", "human"): 10,
            ("demo", "pairwise", "simulated"): 2,
            ("demo", "pairwise", "model"): 1,
            ("ranked", "ranking", "human"): 1,
        },
    )


def test_seconds_per_judgment_histogram(seeded):
    client, _ = seeded
    got = scrape(client)
    labels = ("campaign", "kind", "rater_kind")
    # Human first submissions timed: 4, 12, 25, 40, 0.5 (ana); 3, 8, 6, 7 (bob; t4 untimed, the edit's 9 not first).
    human = [0.5, 3, 4, 6, 7, 8, 12, 25, 40]
    assert got["plumb_judgment_seconds_count"] == series(
        labels,
        {("demo", "pairwise", "human"): 9, ("demo", "pairwise", "simulated"): 2, ("ranked", "ranking", "human"): 1},
    )
    assert got["plumb_judgment_seconds_sum"] == series(
        labels,
        {
            ("demo", "pairwise", "human"): 105.5,
            ("demo", "pairwise", "simulated"): 4.0,
            ("ranked", "ranking", "human"): 50,
        },
    )
    assert sum(human) == 105.5
    buckets = got["plumb_judgment_seconds_bucket"]
    human_buckets = {
        dict(key)["le"]: value
        for key, value in buckets.items()
        if ("rater_kind", "human") in key and ("kind", "pairwise") in key
    }
    assert human_buckets == {
        "1.0": 1, "2.0": 1, "5.0": 3, "10.0": 6, "20.0": 7, "30.0": 8,
        "60.0": 9, "120.0": 9, "300.0": 9, "600.0": 9, "+Inf": 9,
    }  # fmt: skip
    simulated = {dict(key)["le"]: value for key, value in buckets.items() if ("rater_kind", "simulated") in key}
    assert simulated["1.0"] == 0 and simulated["2.0"] == 2 and simulated["+Inf"] == 2
    assert not any(("rater_kind", "model") in key for key in buckets)  # the auto-label was not timed


def test_tie_both_bad_position_bias_and_reward_model_agreement(seeded):
    client, _ = seeded
    got = scrape(client)
    labels = ("campaign", "rater_kind")
    # Live human judgments: ana t1-t5, bob t1, t3, t4, t6 (edited) = 9; ties: ana t4; both bad: ana t5.
    # Decided: 7, of which shown left: ana t1, bob t1. Simulated: t1 left, t3 right. Model: t5 left.
    assert got["plumb_drift_window_judgments"] == series(
        labels, {("demo", "human"): 9, ("demo", "simulated"): 2, ("demo", "model"): 1}
    )
    assert got["plumb_tie_rate"] == series(
        labels, {("demo", "human"): 1 / 9, ("demo", "simulated"): 0, ("demo", "model"): 0}
    )
    assert got["plumb_both_bad_rate"] == series(
        labels, {("demo", "human"): 1 / 9, ("demo", "simulated"): 0, ("demo", "model"): 0}
    )
    assert got["plumb_position_bias"] == series(
        labels, {("demo", "human"): 2 / 7, ("demo", "simulated"): 1 / 2, ("demo", "model"): 1.0}
    )
    # Decided judgments of pre-labelled tasks (t3-t5): ana t3 (no), bob t3 (yes), bob t4 (yes); sim t3 (no).
    # The model's own auto-label is never compared with it; "ranked" names no reward model.
    assert got["plumb_reward_model_judgments"] == series(labels, {("demo", "human"): 3, ("demo", "simulated"): 1})
    assert got["plumb_reward_model_agreement"] == series(labels, {("demo", "human"): 2 / 3, ("demo", "simulated"): 0})


def test_the_drift_window_is_the_newest_judgments_of_each_rater_kind(seeded, monkeypatch):
    client, _ = seeded
    monkeypatch.setattr(drift, "DRIFT_WINDOW", 4)
    got = scrape(client)
    human = (("campaign", "demo"), ("rater_kind", "human"))
    # The 4 newest live human judgments: bob t1 (left), t3 (right, the model's), t4 (right, the model's), t6 (right).
    assert got["plumb_drift_window_judgments"][human] == 4
    assert got["plumb_tie_rate"][human] == 0 and got["plumb_both_bad_rate"][human] == 0
    assert got["plumb_position_bias"][human] == 1 / 4
    assert got["plumb_reward_model_judgments"][human] == 2 and got["plumb_reward_model_agreement"][human] == 1.0


def test_drift_over_time_is_the_window_figures_block_by_block(seeded, tmp_path):
    from collect.app.plots import plot_drift_over_time
    from collect.store import campaign_by_name, open_store

    _, db_url = seeded
    with open_store(db_url)() as session:
        demo = campaign_by_name(session=session, name="demo")
        blocks = drift.drift_over_time(session, demo, "human", block=5)
        newest = drift.window_figures(session, demo, "human", window=4)
        assert drift.drift_over_time(session, demo, "nobody") == []
    counts = ("judgments", "ties", "both_bad", "decided", "left_won", "model_judgments", "model_agreed")
    # The 9 live human judgments, oldest first, in blocks of 5 and 4. The second block is the 4 newest (worked out
    # in the window test above: 0 ties, 0 both bad, 1 of 4 decided on the left, the model's choice 2 of 2); the
    # first is the whole window's 9 (1 tie, 1 both bad, 2 of 7 left, 2 of 3 with the model) less those.
    assert [tuple(b[key] for key in counts) for b in blocks] == [(5, 1, 1, 3, 1, 1, 0), (4, 0, 0, 4, 1, 2, 2)]
    assert {key: blocks[1][key] for key in counts} == newest
    assert blocks[0]["until"] <= blocks[1]["until"]
    assert plot_drift_over_time(blocks, tmp_path / "drift.png", title="t").stat().st_size > 0
    assert plot_drift_over_time([], tmp_path / "none.png", title="t") is None


def test_no_reward_model_agreement_where_the_campaign_names_no_reward_model(store, db_url):
    engine, sessions = store
    seed_campaign(sessions, name="plain", prompts=1)
    with sessions.begin() as session:
        ana = create_rater(session=session, name="ana")[0]
        task = session.scalar(select(Task))
        task.prelabel = {"preferred": 0, "confidence": 0.9, "model": "rm"}  # left from an earlier configuration
        _answer(session, ana, task, [0, 1], 5.0, {"preference": 1})
    engine.dispose()
    with TestClient(create_app(db_url, metrics_public=True)) as client:
        got = scrape(client)
    assert got["plumb_drift_window_judgments"] == series(("campaign", "rater_kind"), {("plain", "human"): 1})
    assert "plumb_reward_model_judgments" not in got and "plumb_reward_model_agreement" not in got


def test_gold_accuracy_per_rater_kind_and_per_rater(seeded):
    client, _ = seeded
    got = scrape(client)
    # Live gold judgments: ana t1, t2 right; bob t1 wrong (his t2 was undone); sim t1 right.
    labels = ("campaign", "rater_kind")
    assert got["plumb_gold_judgments"] == series(labels, {("demo", "human"): 3, ("demo", "simulated"): 1})
    assert got["plumb_gold_correct"] == series(labels, {("demo", "human"): 2, ("demo", "simulated"): 1})
    assert got["plumb_gold_accuracy"] == series(labels, {("demo", "human"): 2 / 3, ("demo", "simulated"): 1.0})
    labels = ("campaign", "rater", "rater_kind")
    raters = {("demo", "ana", "human"): 2, ("demo", "bob", "human"): 1, ("demo", "sim", "simulated"): 1}
    assert got["plumb_rater_gold_judgments"] == series(labels, raters)
    correct = {("demo", "ana", "human"): 2, ("demo", "bob", "human"): 0, ("demo", "sim", "simulated"): 1}
    assert got["plumb_rater_gold_correct"] == series(labels, correct)
    accuracy = {("demo", "ana", "human"): 1.0, ("demo", "bob", "human"): 0.0, ("demo", "sim", "simulated"): 1.0}
    assert got["plumb_rater_gold_accuracy"] == series(labels, accuracy)


def test_request_latency_by_route_template_and_the_process(seeded):
    client, _ = seeded
    with client.app.state.sessions.begin() as session:
        token = create_rater(session=session, name="zoe")[1]
    for name in ("demo", "ranked"):  # two paths, one route
        assert client.get(f"/api/campaigns/{name}/stats", headers=auth(token)).status_code == 200
    assert client.get("/api/campaigns/demo/stats", headers=auth("wrong")).status_code == 401
    assert client.get("/healthz").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    got = scrape(client)
    counts = {
        dict(key)["route"] + " " + dict(key)["status"]: value
        for key, value in got["plumb_http_request_duration_seconds_count"].items()
    }
    # The scrape itself is observed once its response starts, after its text was written: not in it.
    assert counts == {
        "/api/campaigns/{name}/stats 200": 2,
        "/api/campaigns/{name}/stats 401": 1,
        "/healthz 200": 1,
        "<unrouted> 404": 1,
    }
    assert all(dict(key)["method"] == "GET" for key in got["plumb_http_request_duration_seconds_count"])
    assert all(seconds > 0 for seconds in got["plumb_http_request_duration_seconds_sum"].values())
    # The process and the platform collectors.
    major, minor, patchlevel = platform.python_version_tuple()
    python = {"implementation": platform.python_implementation(), "version": platform.python_version()}
    python |= {"major": major, "minor": minor, "patchlevel": patchlevel}
    assert got["python_info"] == {tuple(sorted(python.items())): 1.0}
    assert got["process_resident_memory_bytes"][()] > 10e6 and got["process_cpu_seconds_total"][()] > 0


def test_the_mounted_page_is_timed_by_route_template_too(sqlite_url):
    from collect.serve import ServeArguments, build_server
    from tests.support.campaigns import PASSWORDS, make_store

    engine, _, _ = make_store(sqlite_url)
    engine.dispose()
    with TestClient(build_server(ServeArguments(db=sqlite_url, campaign="demo", metrics_public=True))) as client:
        assert client.post("/login", data={"username": "ana", "password": PASSWORDS["ana"]}).status_code == 200
        assert client.get("/config").status_code == 200 and client.get("/gradio_api/info").status_code == 200
        for path in ("/etc/passwd", "/etc/hosts"):  # refused by the page's own guard, before any route
            assert client.get(f"/gradio_api/file={path}").status_code == 403
        got = scrape(client)
    counts = {
        (dict(key)["method"], dict(key)["route"], dict(key)["status"]): value
        for key, value in got["plumb_http_request_duration_seconds_count"].items()
    }
    assert counts == {
        ("POST", "/login", "200"): 1,
        ("GET", "/config", "200"): 1,
        ("GET", "/gradio_api/info", "200"): 1,
        ("GET", "<unrouted>", "403"): 2,
    }


def test_healthz_answers_while_the_database_does(seeded):
    client, url = seeded
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "sqlite" if url.startswith("sqlite") else "postgresql"}


def test_healthz_is_503_when_the_sqlite_file_is_gone(sqlite_url):
    from collect.store import make_engine, upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    engine.dispose()
    with TestClient(create_app(sqlite_url)) as client:
        assert client.get("/healthz").status_code == 200
        Path(sqlite_url.removeprefix("sqlite:///")).unlink()
        response = client.get("/healthz")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json() == {"status": "unavailable", "reason": "the SQLite database file is gone"}


def test_healthz_is_503_when_postgresql_is_down(postgres_server):
    from collect.store import make_engine, upgrade
    from tests.support.postgres import create_database, drop_database

    url = create_database(postgres_server)
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        with TestClient(create_app(url)) as client:
            assert client.get("/healthz").status_code == 200
            cut_off_database(postgres_server, url)
            response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "reason": "the database did not answer (OperationalError)"}
        assert "plumb@" not in response.text  # the driver's words, which name the user and host, stay in the log
    finally:
        drop_database(postgres_server, url)
