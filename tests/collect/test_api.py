"""The REST API: token auth, next task, submit, edit, undo, skip, stats, export, OpenAPI; 4xx for bad input."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from collect.api.server import create_app
from collect.store import create_rater, make_engine, session_factory, upgrade
from tests.support.campaigns import seed_campaign
from tests.support.serving import auth


def test_a_rater_judges_edits_and_undoes_through_the_api(api):
    client, tokens = api
    task = client.get("/api/campaigns/demo/next", headers=auth(tokens["ana"])).json()
    assert [c["label"] for c in task["candidates"]] == ["A", "B"]
    assert task["options"]["scale"][0] == {"label": "A much better", "preference": 3}
    assert "sft" not in str(task["candidates"][0].keys())  # policy names are never shown
    body = {"assignment_id": task["assignment_id"], "choice": "A slightly better", "flags": ["unsafe"]}
    first = client.post("/api/campaigns/demo/judgments", json=body, headers=auth(tokens["ana"]))
    assert first.status_code == 201
    edit = client.post(
        "/api/campaigns/demo/judgments", json={**body, "choice": "Both bad"}, headers=auth(tokens["ana"])
    )
    assert edit.json()["supersedes_id"] == first.json()["judgment_id"]
    back = client.post("/api/campaigns/demo/undo", headers=auth(tokens["ana"]))
    assert back.json()["assignment_id"] == task["assignment_id"]
    stats = client.get("/api/campaigns/demo/stats", headers=auth(tokens["ana"])).json()
    assert stats == {
        "campaign": "demo",
        "tasks": 3,
        "gold_tasks": 0,
        "complete_tasks": 0,
        "judgments": 0,
        "raters": 0,
        "my_judgments": 0,
    }
    # This campaign does not ask for improved responses: an edit is refused with the reason, and nothing is stored.
    refused = client.post(
        "/api/campaigns/demo/judgments", json={**body, "edit": "Better."}, headers=auth(tokens["ana"])
    )
    assert refused.status_code == 400 and "improve a response" in refused.text
    assert task["options"]["allow_edits"] is False


def test_a_day_old_judgment_is_not_changed_by_posting_again(api, db_url):
    from sqlalchemy import select

    from collect.store import Judgment

    client, tokens = api
    task = client.get("/api/campaigns/demo/next", headers=auth(tokens["ana"])).json()
    body = {"assignment_id": task["assignment_id"], "choice": "B better"}
    first = client.post("/api/campaigns/demo/judgments", json=body, headers=auth(tokens["ana"]))
    engine = make_engine(db_url)
    with session_factory(engine).begin() as session:
        judgment = session.get(Judgment, first.json()["judgment_id"])
        judgment.created_at -= timedelta(days=1)
    flipped = client.post(
        "/api/campaigns/demo/judgments", json={**body, "choice": "A much better"}, headers=auth(tokens["ana"])
    )
    assert flipped.status_code == 400 and "ask a reviewer" in flipped.text
    with session_factory(engine)() as session:
        assert session.scalars(select(Judgment.id)).all() == [first.json()["judgment_id"]]
    engine.dispose()


def test_strangers_and_other_raters_cannot_probe_campaigns_or_assignments(api):
    client, tokens = api
    for campaign in ("demo", "no-such-campaign"):  # the token is checked first: the same 401 either way
        answer = client.get(f"/api/campaigns/{campaign}/stats", headers=auth("wrong-token"))
        assert answer.status_code == 401 and "API token" in answer.text
    mine = client.get("/api/campaigns/demo/next", headers=auth(tokens["ana"])).json()["assignment_id"]
    answers = [
        client.post(
            "/api/campaigns/demo/judgments",
            json={"assignment_id": assignment, "choice": "A better"},
            headers=auth(tokens["ben"]),
        )
        for assignment in (mine, 99999)  # ana's, and one that does not exist
    ]
    assert [a.status_code for a in answers] == [404, 404]
    assert [a.json()["detail"].replace(str(mine), "N").replace("99999", "N") for a in answers] == [
        "assignment N is not one of yours in campaign 'demo'"
    ] * 2


def test_skip_and_export_with_roles(api):
    client, tokens = api
    for name in ("ana", "ben"):  # fewest judgments first: each gets a different task
        task = client.get("/api/campaigns/demo/next", headers=auth(tokens[name])).json()
        judged = client.post(
            "/api/campaigns/demo/judgments",
            headers=auth(tokens[name]),
            json={"assignment_id": task["assignment_id"], "preference": 2},
        )
        assert judged.status_code == 201
    skipped = client.get("/api/campaigns/demo/next", headers=auth(tokens["ana"])).json()
    assert client.post(
        "/api/campaigns/demo/skip", json={"assignment_id": skipped["assignment_id"]}, headers=auth(tokens["ana"])
    ).json() == {"skipped": skipped["task_id"]}
    assert client.get("/api/campaigns/demo/export", headers=auth(tokens["ana"])).status_code == 403
    exported = client.get("/api/campaigns/demo/export?format=kto", headers=auth(tokens["rev"])).json()
    assert exported["summary"]["judgments"] == 2 and exported["summary"]["left_out"] == {"no judgments yet": 1}
    assert len(exported["rows"]) == 4  # two tasks, each a desirable and an undesirable row
    assert client.get("/api/campaigns/demo/stats", headers=auth(tokens["rev"])).json()["raters"] == 2


@pytest.mark.parametrize(
    "method, path, body, status, message",
    [
        ("get", "/api/campaigns/demo/next", None, 401, "API token"),
        ("get", "/api/campaigns/nope/next", None, 404, "no campaign named 'nope'"),
        ("post", "/api/campaigns/demo/judgments", {"assignment_id": "x"}, 422, "assignment_id"),
        ("post", "/api/campaigns/demo/judgments", {"assignment_id": 10**30}, 422, "assignment_id"),
        ("post", "/api/campaigns/demo/judgments", {"assignment_id": 999}, 404, "not one of yours in campaign"),
        ("post", "/api/campaigns/demo/judgments", {"choice": "A way better"}, 422, "unknown choice"),
        ("post", "/api/campaigns/demo/judgments", {"preference": 9}, 422, "less than or equal to 3"),
        ("post", "/api/campaigns/demo/judgments", {}, 400, "needs a preference"),
        ("post", "/api/campaigns/demo/judgments", {"preference": 1, "flags": ["rude"]}, 400, "unknown flag"),
        ("post", "/api/campaigns/demo/undo", None, 400, "nothing to undo"),
        ("get", "/api/campaigns/demo/export?format=csv", None, 422, "'pairwise', 'ranking', 'kto'"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(api, method, path, body, status, message):
    client, tokens = api
    headers = {} if status == 401 else auth(tokens["rev"] if "export" in path else tokens["ana"])
    if body is not None and "assignment_id" not in body:
        lease = client.get("/api/campaigns/demo/next", headers=headers).json()
        body = {"assignment_id": lease["assignment_id"], **body}
    response = getattr(client, method)(path, headers=headers, **({"json": body} if body is not None else {}))
    assert response.status_code == status and message in response.text


def test_the_openapi_schema_is_served(api):
    client, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/api/campaigns/{name}/next",
        "/api/campaigns/{name}/judgments",
        "/api/campaigns/{name}/undo",
        "/api/campaigns/{name}/stats",
        "/api/campaigns/{name}/export",
    } <= set(paths)


@pytest.mark.parametrize(
    "kind, field, shown, status",
    [
        ("ranking", "ranks", [1, 3, 2], 201),
        ("rating", "ratings", [5, 1, 3], 201),
        ("rating", "ratings", [6, 1, 3], 400),
        ("ranking", "ranks", [1, 2], 400),
    ],
)
def test_rankings_and_ratings_are_stored_in_canonical_order(sqlite_url, kind, field, shown, status):
    from sqlalchemy import select

    from collect.store import Judgment

    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_campaign(sessions, kind=kind, prompts=1, policies=("a", "b", "c"))
    with sessions.begin() as session:
        token = create_rater(session=session, name="ana")[1]
    with TestClient(create_app(sqlite_url)) as client:
        task = client.get("/api/campaigns/demo/next", headers=auth(token)).json()
        assert len(task["candidates"]) == 3 and ("rating_points" in task["options"]) == (kind == "rating")
        response = client.post(
            "/api/campaigns/demo/judgments",
            headers=auth(token),
            json={"assignment_id": task["assignment_id"], field: shown},
        )
        assert response.status_code == status, response.text
    with sessions() as session:
        stored = session.scalars(select(Judgment)).all()
        if status == 201:  # the task's canonical order is policies a, b, c; the texts end in the policy's name
            by_policy = {c["completion"][0]["content"][-1]: value for c, value in zip(task["candidates"], shown)}
            assert getattr(stored[0], field) == [by_policy[policy] for policy in "abc"]
        else:
            assert stored == []
    engine.dispose()


def test_a_database_busy_past_its_timeout_is_a_503_to_retry(api, monkeypatch):
    from collect.api import routes

    client, tokens = api

    def busy(**kwargs):
        raise TimeoutError("another transaction of this process has held the SQLite database for too long")

    monkeypatch.setattr(routes, "next_task", busy)
    response = client.get("/api/campaigns/demo/next", headers=auth(tokens["ana"]))
    assert response.status_code == 503 and response.headers["Retry-After"] == "1" and "retry" in response.text


def test_metrics_report_each_campaign_in_the_prometheus_format(api):
    client, tokens = api
    task = client.get("/api/campaigns/demo/next", headers=auth(tokens["ana"])).json()
    client.post(
        "/api/campaigns/demo/judgments",
        json={"assignment_id": task["assignment_id"], "choice": "Tie"},
        headers=auth(tokens["ana"]),
    )
    client.app.state.metrics_public = True  # as `metrics_public: true` serves it; an admin's token is the default
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert "# TYPE plumb_judgments gauge" in lines
    assert 'plumb_tasks{campaign="demo"} 3.0' in lines and 'plumb_judgments{campaign="demo"} 1.0' in lines
    assert 'plumb_raters{campaign="demo"} 1.0' in lines
