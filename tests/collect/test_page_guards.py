"""The page's Gradio routes, guarded: an export's zip only for reviewers and admins (any signed-in rater could
fetch it by its URL), no files at all for raters, and an unknown event number a 422 (it was a 500)."""

import json

import httpx
import pytest

from collect.serve import ServeArguments, build_server
from collect.store import create_rater
from tests.support.campaigns import PASSWORDS, make_store
from tests.support.serving import serving


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The page's URL on a store with raters ana (rater), rev (reviewer) and boss (admin)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('guards') / 'collect.sqlite'}"
    engine, sessions, _ = make_store(url)
    with sessions.begin() as session:
        create_rater(session=session, name="boss", role="admin", password="boss-secret")
    engine.dispose()
    output = tmp_path_factory.mktemp("exports")
    with serving(build_server(ServeArguments(db=url, campaign="demo", output_dir=str(output)))) as base_url:
        yield base_url


def signed_in(base_url: str, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=120)
    assert client.post("/login", data={"username": name, "password": password}).status_code == 200
    return client


def call_event(client: httpx.Client, api_name: str, data: list) -> list:
    """Run a named Gradio event through its HTTP API and return its output values."""
    event_id = client.post(f"/gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
    stream = client.get(f"/gradio_api/call/{api_name}/{event_id}").text
    lines = stream.splitlines()
    complete = lines.index("event: complete")
    return json.loads(lines[complete + 1].removeprefix("data: "))


def test_an_exports_zip_is_for_staff_only(page):
    admin = signed_in(page, "boss", "boss-secret")
    _, download = call_event(admin, "export", ["pairwise", False, False])
    zip_url = download["url"]
    assert zip_url.endswith(".zip") and admin.get(zip_url).status_code == 200
    assert signed_in(page, "rev", PASSWORDS["rev"]).get(zip_url).status_code == 200  # a reviewer may export too
    assert signed_in(page, "ana", PASSWORDS["ana"]).get(zip_url).status_code == 403
    assert httpx.get(zip_url).status_code in (401, 403)


def test_an_unknown_event_number_is_a_422(page):
    client = signed_in(page, "ana", PASSWORDS["ana"])
    for route in ("/gradio_api/queue/join", "/gradio_api/run/predict"):
        response = client.post(route, json={"data": [], "fn_index": 999, "session_hash": "s1"})
        assert response.status_code == 422 and "fn_index 999" in response.text, route
