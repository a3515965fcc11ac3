"""What a rater's request costs the database: SQL statements per next task and per submit, counted, not timed.

The counts are worked out from what each request must do (below, per test); SQLite's
`BEGIN IMMEDIATE` is left out, so one limit holds on both databases.
"""

from sqlalchemy import event

from collect.domain import campaign as campaign_module
from collect.store import campaign_by_name, make_engine, session_factory
from tests.support.serving import auth

NEXT = "/api/campaigns/demo/next"
SUBMIT = "/api/campaigns/demo/judgments"


def statements_sent(client) -> list[str]:
    """A list that fills with every SQL statement the app sends from now on (BEGIN excepted)."""
    sent = []

    def note(connection, cursor, statement, parameters, context, executemany):
        if not statement.startswith("BEGIN"):
            sent.append(statement)

    event.listen(client.app.state.sessions.kw["bind"], "before_cursor_execute", note)
    return sent


def test_next_task_and_submit_take_few_statements(api):
    # Next: the rater by token, the campaign by name, their unexpired lease (none), the best free task with
    # their old lease of it, PostgreSQL's recount once the task is locked, the lease's INSERT, the task with
    # its prompt, its candidates: 7, 8 on PostgreSQL (it was 10 and 11).
    # Submit: the rater, the campaign, the assignment with its task, the rater's live judgment of the task,
    # the assignment's UPDATE, the judgment's INSERT, the task count's UPDATE, the audit event's INSERT: 8
    # (it was 13).
    client, tokens = api
    sent = statements_sent(client)
    for name in ("ana", "ben"):
        sent.clear()
        task = client.get(NEXT, headers=auth(tokens[name])).json()
        assert len(sent) <= 8, sent
        sent.clear()
        body = {"assignment_id": task["assignment_id"], "choice": "A better"}
        assert client.post(SUBMIT, json=body, headers=auth(tokens[name])).status_code == 201
        assert len(sent) <= 8, sent
    stats = client.get("/api/campaigns/demo/stats", headers=auth(tokens["rev"])).json()
    assert stats["judgments"] == 2 and stats["raters"] == 2


def test_a_submit_reads_the_raters_judgments_of_the_task_once(api):
    # One look at the rater's live judgment serves both the undo-window check and the one it supersedes.
    client, tokens = api
    task = client.get(NEXT, headers=auth(tokens["ana"])).json()
    sent = statements_sent(client)
    body = {"assignment_id": task["assignment_id"], "choice": "A better"}
    for expected in (201, 201):  # an answer, then a change of mind that supersedes it
        sent.clear()
        assert client.post(SUBMIT, json=body, headers=auth(tokens["ana"])).status_code == expected
        reads = [s for s in sent if s.startswith("SELECT") and "FROM judgments" in s]
        assert len(reads) == 1, reads


def test_the_campaign_definition_is_parsed_once_not_per_request(api, monkeypatch):
    parsed = []
    original = campaign_module.campaign_from_dict

    def counted(values, **kwargs):
        parsed.append(values["name"])
        return original(values, **kwargs)

    monkeypatch.setattr(campaign_module, "campaign_from_dict", counted)
    client, tokens = api
    for name in ("ana", "ben", "ana", "ben"):  # 4 tasks leased and judged: 8 requests that each need the spec
        task = client.get(NEXT, headers=auth(tokens[name])).json()
        body = {"assignment_id": task["assignment_id"], "choice": "Tie"}
        assert client.post(SUBMIT, json=body, headers=auth(tokens[name])).status_code == 201
    assert len(parsed) <= 1  # once, or not at all when an earlier test served the same definition


def test_a_changed_definition_is_served_at_once(api, db_url):
    client, tokens = api
    first = client.get(NEXT, headers=auth(tokens["ana"])).json()
    assert first["options"]["flags"] == ["unsafe"]
    engine = make_engine(db_url)
    with session_factory(engine).begin() as session:
        campaign = campaign_by_name(session=session, name="demo")
        campaign.definition = {**campaign.definition, "flags": ["off-topic"]}
    engine.dispose()
    again = client.get(NEXT, headers=auth(tokens["ana"])).json()  # the same lease, under the new definition
    assert again["assignment_id"] == first["assignment_id"] and again["options"]["flags"] == ["off-topic"]
    body = {"assignment_id": first["assignment_id"], "choice": "A better", "flags": ["unsafe"]}
    refused = client.post(SUBMIT, json=body, headers=auth(tokens["ana"]))
    assert refused.status_code == 400 and "unknown flag" in refused.text
    accepted = client.post(SUBMIT, json={**body, "flags": ["off-topic"]}, headers=auth(tokens["ana"]))
    assert accepted.status_code == 201
