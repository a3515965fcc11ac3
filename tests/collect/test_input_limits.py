"""One set of input limits at every entry point (REST, the page's events, the store), and bad text is a 4xx, not a 500.

Each case was stored or crashed before the limits: a 10 MB rationale through the page, a
100 MB body with 201, 10 MB of flags, ranks on a pairwise task, a lone surrogate or a NUL
(500 on PostgreSQL), `seconds_spent: NaN`.
"""

import json

import pytest
from sqlalchemy import func, select

from collect.app import handlers
from collect.store import Judgment, rater_by_token
from collect.store.limits import BODY_MAX_BYTES, EDIT_MAX_CHARS, FLAGS_MAX, RATIONALE_MAX_CHARS
from tests.support.campaigns import make_store
from tests.support.serving import auth


def judgments_stored(client) -> int:
    with client.app.state.sessions() as session:
        return session.scalar(select(func.count(Judgment.id)))


def post_judgment(client, token, raw: str):
    """POST a judgment body given as raw JSON text (so NaN and lone surrogates go out as a client could send them)."""
    headers = {**auth(token), "Content-Type": "application/json"}
    return client.post("/api/campaigns/demo/judgments", content=raw.encode("utf-8"), headers=headers)


def leased(client, token) -> int:
    return client.get("/api/campaigns/demo/next", headers=auth(token)).json()["assignment_id"]


@pytest.mark.parametrize(
    "extra, status, message",
    [
        ('"rationale": "' + "r" * (RATIONALE_MAX_CHARS + 1) + '"', 422, "rationale"),
        ('"flags": ' + json.dumps(["unsafe"] * (FLAGS_MAX + 1)), 422, "flags"),
        ('"flags": ["unsafe", "unsafe"]', 400, "repeat"),
        ('"ranks": [1, 2]', 400, "takes no ranks"),
        ('"ratings": [3, 4]', 400, "takes no ratings"),
        ('"both_bad": true', 400, "not both"),
        ('"seconds_spent": NaN', 422, "seconds_spent"),
        ('"seconds_spent": 1e12', 422, "seconds_spent"),
        ('"rationale": "a \\ud800 b"', 422, "unicode"),
        ('"rationale": "a \\u0000 b"', 400, "NUL"),
        ('"flags": ["\\udfff"]', 400, "unknown flag(s) '\\\\udfff'"),
        ('"assignment": 1', 422, "extra"),
    ],
)
def test_an_answer_over_a_limit_or_not_fitting_its_task_is_refused_and_nothing_is_stored(api, extra, status, message):
    client, tokens = api
    raw = f'{{"assignment_id": {leased(client, tokens["ana"])}, "preference": 1, {extra}}}'
    response = post_judgment(client, tokens["ana"], raw)
    assert (response.status_code, judgments_stored(client)) == (status, 0), response.text[:300]
    assert message in response.text


def test_a_422_names_the_field_without_echoing_the_input(api):
    client, tokens = api
    secret = "s" * (RATIONALE_MAX_CHARS + 1)
    raw = json.dumps({"assignment_id": leased(client, tokens["ana"]), "preference": 1, "rationale": secret})
    response = post_judgment(client, tokens["ana"], raw)
    assert response.status_code == 422 and "rationale" in response.text
    assert "s" * 100 not in response.text and len(response.content) < 1_000


def test_a_body_over_the_size_limit_is_a_413_before_it_is_read(api):
    client, tokens = api
    padding = "x" * (BODY_MAX_BYTES + 1)
    raw = json.dumps({"assignment_id": leased(client, tokens["ana"]), "preference": 1, "rationale": padding})
    assert post_judgment(client, tokens["ana"], raw).status_code == 413
    # A chunked body declares no length: it is counted as it streams in.
    chunks = (piece.encode() for piece in [raw[i : i + 65_536] for i in range(0, len(raw), 65_536)])
    headers = {**auth(tokens["ana"]), "Content-Type": "application/json"}
    assert client.post("/api/campaigns/demo/judgments", content=chunks, headers=headers).status_code == 413
    assert judgments_stored(client) == 0


@pytest.mark.parametrize("name", ["de%00mo", "de%ED%A0%80mo", "de%F0mo"])
def test_a_campaign_name_that_cannot_be_stored_is_a_404_on_both_databases(api, name):
    client, tokens = api
    response = client.get(f"/api/campaigns/{name}/stats", headers=auth(tokens["ana"]))
    assert response.status_code == 404 and "no campaign named" in response.text


def test_a_token_with_a_nul_is_no_raters_on_both_databases(api):
    client, _ = api
    with client.app.state.sessions() as session:
        assert rater_by_token(session=session, token="to\x00ken") is None


def test_the_page_stores_no_more_than_rest_does(sqlite_url):
    engine, sessions, _ = make_store(sqlite_url, flags=["unsafe"], allow_edits=True)
    cases = [
        ("rationale", "w" * (RATIONALE_MAX_CHARS + 1), f"rationale is {RATIONALE_MAX_CHARS + 1:,} characters"),
        ("edit", "w" * (EDIT_MAX_CHARS + 1), f"edit is {EDIT_MAX_CHARS + 1:,} characters"),
        ("rationale", "a \ud800 b", "rationale contains a lone UTF-16 surrogate"),
        ("edit", "a \x00 b", "edit contains a NUL"),
    ]
    for field, text, reason in cases:
        page = handlers.show_next(sessions, campaign="demo", rater_name="ana")
        answer = {"rationale": "fine", field: text}
        refused = handlers.judge(
            sessions, campaign="demo", rater_name="ana", assignment_id=page.assignment_id, choice="A better", **answer
        )
        assert refused.assignment_id == page.assignment_id and reason in refused.message
    with sessions() as session:
        assert session.scalar(select(func.count(Judgment.id))) == 0
    engine.dispose()
