"""What the API shows to whom, and how it answers when the database cannot: `/metrics` needs an admin's token
unless made public, no CORS for origins not listed, no file uploads, and 503 with Retry-After when the
database is locked or down (it was a 500, or a 30 s wait)."""

import re
import sqlite3
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from collect.api.server import create_app
from collect.serve import ServeArguments, build_server
from collect.store import create_rater
from collect.store import engine as store_engine
from tests.support.campaigns import PASSWORDS, make_store
from tests.support.postgres import create_database, cut_off_database, drop_database
from tests.support.serving import auth


@pytest.fixture
def store(sqlite_url):
    """(SQLite URL, API tokens of ana (rater), rev (reviewer) and boss (admin))."""
    engine, sessions, tokens = make_store(sqlite_url)
    with sessions.begin() as session:
        tokens["boss"] = create_rater(session=session, name="boss", role="admin")[1]
    engine.dispose()
    return sqlite_url, tokens


def test_metrics_need_an_admins_token_unless_made_public(store):
    url, tokens = store
    with TestClient(create_app(url)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=auth(tokens["rev"])).status_code == 403
        scraped = client.get("/metrics", headers=auth(tokens["boss"]))
        assert scraped.status_code == 200 and 'plumb_tasks{campaign="demo"} 3.0' in scraped.text.splitlines()
    with TestClient(create_app(url, metrics_public=True)) as client:
        assert 'plumb_tasks{campaign="demo"} 3.0' in client.get("/metrics").text.splitlines()


@pytest.mark.parametrize("origin", ["http://localhost:9999", "http://127.0.0.1:1234", "https://evil.example"])
def test_no_cors_for_an_origin_not_listed(store, origin):
    url, tokens = store
    with TestClient(create_app(url)) as client:
        simple = client.get("/api/campaigns/demo/stats", headers={**auth(tokens["ana"]), "Origin": origin})
        assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers
        preflight = client.options(
            "/api/campaigns/demo/stats", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
        )
        assert "access-control-allow-origin" not in preflight.headers
    with TestClient(create_app(url, cors_origins=["https://labels.example"])) as client:
        listed = client.get("/api/campaigns/demo/stats", headers={"Origin": "https://labels.example"})
        assert listed.headers["access-control-allow-origin"] == "https://labels.example"


@pytest.mark.parametrize("origin", ["http://localhost:9999", "https://evil.example"])
def test_the_page_served_on_localhost_gives_no_cors_either(store, origin):
    url, _ = store
    # Gradio on its own answers any localhost origin (and, served elsewhere, any origin) with credentialed CORS.
    with TestClient(build_server(ServeArguments(db=url, campaign="demo")), base_url="http://127.0.0.1:7860") as client:
        for path in ("/config", "/gradio_api/info", "/api/campaigns/demo/stats"):
            response = client.get(path, headers={"Origin": origin})
            assert "access-control-allow-origin" not in response.headers, path


def test_the_page_takes_no_uploads(store):
    url, _ = store
    with TestClient(build_server(ServeArguments(db=url, campaign="demo"))) as client:
        client.post("/login", data={"username": "ana", "password": PASSWORDS["ana"]})
        upload = client.post("/gradio_api/upload", files={"files": ("big.bin", b"x" * 100_000)})
        assert upload.status_code == 403


def test_a_locked_sqlite_database_is_a_503_with_retry_after(store, monkeypatch):
    url, tokens = store
    monkeypatch.setattr(store_engine, "SQLITE_BUSY_TIMEOUT_MS", 300)
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    with TestClient(create_app(url)) as client:
        holder.execute("BEGIN IMMEDIATE")  # another process's import, say, holding the writer lock
        try:
            response = client.get("/api/campaigns/demo/next", headers=auth(tokens["ana"]))
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert "retry" in response.json()["detail"]
        assert client.get("/api/campaigns/demo/next", headers=auth(tokens["ana"])).status_code == 200


def test_postgresql_down_is_a_503_with_retry_after(postgres_server):
    url = create_database(postgres_server)
    engine, _, tokens = make_store(url)
    engine.dispose()
    try:
        with TestClient(create_app(url)) as client:
            assert client.get("/api/campaigns/demo/next", headers=auth(tokens["ana"])).status_code == 200
            cut_off_database(postgres_server, url)
            response = client.get("/api/campaigns/demo/next", headers=auth(tokens["ana"]))
        assert response.status_code == 503 and response.headers["Retry-After"] == "1"
        assert "psycopg" not in response.text and "plumb@" not in response.text  # the driver's words stay in the log
    finally:
        drop_database(postgres_server, url)


def test_the_docs_page_and_its_assets_come_from_the_app_itself(store):
    # Before: /docs loaded Swagger UI from a CDN, a blank page offline.
    url, _ = store
    with TestClient(create_app(url)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        referenced = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?'([^']+)'""", page.text)
        assets = [link for pair in referenced for link in pair if link]
        assert len(assets) == 4  # stylesheet, icon, script, the OpenAPI schema
        for asset in assets:
            assert urlsplit(asset).netloc == "" and asset.startswith("/"), asset
            served = client.get(asset)
            assert served.status_code == 200 and len(served.content) > 0, asset
        assert "SwaggerUIBundle" in client.get(assets[2]).text
