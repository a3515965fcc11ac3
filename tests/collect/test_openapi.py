"""The REST API keeps to its OpenAPI spec: schemathesis generates requests from the spec (valid and invalid)
and checks every answer with all its checks: no 5xx, every status and body documented, bad input refused.

Bounded (`max_examples` per operation) so that it runs in CI on every push.
"""

from datetime import datetime, timedelta

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from collect.api.server import create_app
from collect.store import create_rater
from tests.support.campaigns import make_store
from tests.support.serving import auth

EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def served_api(tmp_path_factory):
    """(the app on a seeded SQLite store, an admin's API token, a rater's that schemathesis does not use)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'collect.sqlite'}"
    engine, sessions, tokens = make_store(url, flags=["unsafe"], allow_edits=True)
    with sessions.begin() as session:
        token = create_rater(session=session, name="boss", role="admin")[1]
    engine.dispose()
    return create_app(url), token, tokens["ana"]


def test_every_answer_keeps_to_the_spec(served_api):
    app, token, _ = served_api
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6  # next, judgments, skip, undo, stats, export, metrics
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same cases on every run: a failure in CI is one to reproduce here
            database=None,
        )
        def keeps_to_the_spec(case):
            case.call_and_validate(headers=auth(token))

        keeps_to_the_spec()


def test_times_carry_their_offset_as_the_spec_promises(served_api):
    app, _, token = served_api
    with TestClient(app) as client:
        schema = client.get("/openapi.json").json()["components"]["schemas"]["TaskView"]["properties"]["expires_at"]
        assert schema["format"] == "date-time"
        expires = client.get("/api/campaigns/demo/next", headers=auth(token)).json()["expires_at"]
    # It was "2026-12-01T22:50:00", which a date-time (RFC 3339) must not be: no offset.
    assert datetime.fromisoformat(expires).utcoffset() == timedelta(0)
