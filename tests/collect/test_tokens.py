"""API tokens: scopes within the role, expiry, rotation and revocation from the command line, the Admin tab and
REST; deactivating a rater revokes them, so reactivating revives none (before, the old token came back)."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text

from collect.api.server import create_app
from collect.services import admin
from collect.store import create_rater, make_engine, rater_by_token, session_factory, upgrade
from collect.store.api_tokens import TokenError, issue_token, revoke_tokens, rotate_token, token_owner
from collect.store.engine import alembic_config
from collect.store.models import utcnow
from tests.support.campaigns import make_store
from tests.support.serving import auth

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(sqlite_url):
    """(URL, sessions, tokens) of a store with raters ana, ben, reviewer rev and admin boss."""
    engine, sessions, tokens = make_store(sqlite_url)
    with sessions.begin() as session:
        tokens["boss"] = create_rater(session=session, name="boss", role="admin", password="boss-secret")[1]
    yield sqlite_url, sessions, tokens
    engine.dispose()


def owner(sessions, token):
    with sessions() as session:
        rater, scopes = token_owner(session=session, token=token)
        return (rater.name, scopes) if rater else None


def test_scopes_stay_within_the_role_and_expired_revoked_or_rotated_tokens_stop(store):
    _, sessions, tokens = store
    assert owner(sessions, tokens["rev"]) == ("rev", ["rate", "review"])  # a new rater's token: all the role allows
    with sessions.begin() as session:
        ana = rater_by_token(session=session, token=tokens["ana"])
        with pytest.raises(TokenError, match="a rater's token cannot have the scope"):
            issue_token(session=session, rater=ana, scopes=["rate", "admin"])
        with pytest.raises(TokenError, match="in the past"):
            issue_token(session=session, rater=ana, expires_at=utcnow() - timedelta(minutes=1))
        short = issue_token(session=session, rater=ana, expires_at=utcnow() + timedelta(hours=1))
    assert owner(sessions, short[1]) == ("ana", ["rate"])
    with sessions() as session:
        assert token_owner(session=session, token=short[1], now=utcnow() + timedelta(hours=2)) == (None, None)
    with sessions.begin() as session:
        ana = rater_by_token(session=session, token=tokens["ana"])
        new = rotate_token(session=session, rater=ana, token=tokens["ana"])[1]
    assert owner(sessions, tokens["ana"]) is None and owner(sessions, new) == ("ana", ["rate"])
    with sessions.begin() as session:
        assert revoke_tokens(session=session, rater=rater_by_token(session=session, token=new)) == 2  # new and short
    assert owner(sessions, new) is None and owner(sessions, short[1]) is None


def test_a_role_change_narrows_a_token_at_once(store):
    _, sessions, tokens = store
    admin.change_role(sessions, admin_name="boss", name="rev", role="rater")
    assert owner(sessions, tokens["rev"]) == ("rev", ["rate"])


def test_deactivating_revokes_so_reactivating_revives_no_token(store):
    _, sessions, tokens = store
    admin.change_active(sessions, admin_name="boss", name="ana", active=False)
    admin.change_active(sessions, admin_name="boss", name="ana", active=True)
    assert owner(sessions, tokens["ana"]) is None
    message = admin.new_api_token(sessions, admin_name="boss", name="ana", scopes=["rate"], expires="2099-01-31")
    token = message.split("`")[1]
    assert owner(sessions, token) == ("ana", ["rate"]) and "until 2099-01-31T00:00:00Z" in message
    assert admin.revoke_api_tokens(sessions, admin_name="boss", name="ana") == "Revoked 1 API token(s) of 'ana'."
    assert owner(sessions, token) is None
    with pytest.raises(PermissionError):
        admin.new_api_token(sessions, admin_name="rev", name="ana")
    kept = admin.new_api_token(sessions, admin_name="boss", name="ana").split("`")[1]
    with pytest.raises(TokenError, match="cannot have the scope"):  # refused as a whole: the old token still works
        admin.new_api_token(sessions, admin_name="boss", name="ana", scopes=["admin"])
    assert owner(sessions, kept) == ("ana", ["rate"])


def test_rest_scopes_rotation_and_revocation(store):
    url, _, tokens = store
    with TestClient(create_app(url)) as client:
        rate_only = client.post(
            "/api/raters/rev/tokens", json={"scopes": ["rate"]}, headers=auth(tokens["boss"])
        ).json()
        assert client.get("/api/campaigns/demo/stats", headers=auth(rate_only["token"])).status_code == 200
        refused = client.get("/api/campaigns/demo/export", headers=auth(rate_only["token"]))
        assert refused.status_code == 403 and "'review' scope" in refused.text
        assert client.get("/api/campaigns/demo/export", headers=auth(tokens["rev"])).status_code == 200
        assert client.post("/api/raters/ana/tokens", json={}, headers=auth(tokens["rev"])).status_code == 403
        over = client.post("/api/raters/ana/tokens", json={"scopes": ["admin"]}, headers=auth(tokens["boss"]))
        assert over.status_code == 400 and "cannot have the scope" in over.text
        rotated = client.post("/api/tokens/rotate", headers=auth(tokens["ana"]))
        assert rotated.status_code == 201 and rotated.json()["scopes"] == ["rate"]
        assert client.get("/api/campaigns/demo/next", headers=auth(tokens["ana"])).status_code == 401
        new = rotated.json()["token"]
        assert client.get("/api/campaigns/demo/next", headers=auth(new)).status_code == 200
        listed = client.get("/api/raters/ana/tokens", headers=auth(tokens["boss"])).json()
        assert [t["live"] for t in listed] == [True, False] and all("token" not in t for t in listed)
        assert client.post("/api/tokens/revoke", headers=auth(new)).json() == {"revoked": 1}
        assert client.get("/api/campaigns/demo/next", headers=auth(new)).status_code == 401
        assert client.post("/api/raters/ben/tokens/revoke", headers=auth(tokens["boss"])).json() == {"revoked": 1}
        assert client.get("/api/campaigns/demo/next", headers=auth(tokens["ben"])).status_code == 401


def test_the_token_command_issues_lists_rotates_and_revokes(store):
    url, sessions, _ = store

    def plumb(*args):
        result = subprocess.run(
            [sys.executable, "-m", "plumb", "collect", "token", *args, "--db", url.removeprefix("sqlite:///")],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    issued = plumb("issue", "rev", "--scopes", "review,rate", "--expires", "2099-01-31")
    token = issued.splitlines()[-1]
    assert owner(sessions, token) == ("rev", ["rate", "review"]) and "(rate, review)" in issued
    token_id = issued.split()[1]
    rotated = plumb("rotate", "rev", "--id", token_id).splitlines()[-1]
    assert owner(sessions, token) is None and owner(sessions, rotated) == ("rev", ["rate", "review"])
    assert '"expires_at": "2099-01-31T00:00:00Z"' in plumb("list", "rev")
    assert "Revoked 2 token(s)" in plumb("revoke", "rev", "--all")  # the first one and the rotated one
    assert owner(sessions, rotated) is None


def test_tokens_handed_out_before_the_upgrade_keep_working(db_url):
    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), "0004")
    with engine.begin() as connection:
        for name, role, active, digest in (("old", "reviewer", True, "a" * 64), ("gone", "rater", False, "b" * 64)):
            connection.execute(
                text(
                    "INSERT INTO raters (name, role, kind, token_hash, active, created_at) "
                    "VALUES (:name, :role, 'human', :digest, :active, '2026-01-01 00:00:00')"
                ),
                {"name": name, "role": role, "digest": digest, "active": active},
            )
    upgrade(engine)
    with session_factory(engine)() as session:
        rows = session.execute(text("SELECT token_hash, scopes, revoked_at FROM api_tokens ORDER BY id")).all()
        assert [(r[0], r[2] is None) for r in rows] == [("a" * 64, True), ("b" * 64, False)]
        assert session.execute(text("SELECT count(*) FROM raters WHERE token_hash IS NOT NULL")).scalar() == 0
    engine.dispose()
