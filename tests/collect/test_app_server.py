"""The rater app served for real (uvicorn on 127.0.0.1 in a thread), driven with `gradio_client` and the REST API."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from collect.app.keys import button_label
from collect.serve import ServeArguments, build_server
from collect.store import (
    Task,
    make_engine,
    session_factory,
)
from tests.support.campaigns import PASSWORDS, judgments_of, make_store
from tests.support.serving import free_port, serving

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(URL, sessions, API tokens) of a running `plumb collect serve` on a fresh SQLite store."""
    url = f"sqlite:///{tmp_path_factory.mktemp('serve') / 'collect.sqlite'}"
    engine, sessions, tokens = make_store(url)
    with serving(build_server(ServeArguments(db=url, campaign="demo"))) as base_url:
        yield base_url, sessions, tokens
    engine.dispose()


def test_a_logged_in_rater_judges_through_the_gradio_api(served):
    from gradio_client import Client

    base_url, sessions, _ = served
    client = Client(base_url + "/", auth=("ana", PASSWORDS["ana"]), verbose=False)
    try:
        shown = client.predict(api_name="/show_task")
        assert "answer" in str(shown) and "question" in str(shown)
        client.predict(button_label("2", "A better"), "more direct", [], api_name="/judge")
        (judgment,) = judgments_of(sessions, "ana")
        assert abs(judgment.preference) == 2 and judgment.rationale == "more direct"
        assert judgment.seconds_spent is not None and judgment.seconds_spent >= 0
        client.predict(api_name="/undo")
        assert judgments_of(sessions, "ana")[-1].retracted
    finally:
        client.close()


def test_wrong_passwords_and_raters_are_kept_out(served):
    from gradio_client import Client

    base_url, _, tokens = served
    with pytest.raises(ValueError, match="Could not login"):
        Client(base_url + "/", auth=("ana", "wrong"), verbose=False)
    assert httpx.post(f"{base_url}/gradio_api/call/show_task", json={"data": []}).status_code == 401
    client = Client(base_url + "/", auth=("ben", PASSWORDS["ben"]), verbose=False)
    try:
        with pytest.raises(Exception, match="reviewers and admins"):
            client.predict(api_name="/campaign_overview")
    finally:
        client.close()
    reviewer = Client(base_url + "/", auth=("rev", PASSWORDS["rev"]), verbose=False)
    try:
        overview, quality, plot = reviewer.predict(api_name="/campaign_overview")
        assert "| tasks | 3 |" in overview and quality == "No pairwise judgments yet." and plot is None
    finally:
        reviewer.close()
    assert httpx.get(f"{base_url}/api/campaigns/demo/stats").status_code == 401
    stats = httpx.get(f"{base_url}/api/campaigns/demo/stats", headers={"Authorization": f"Bearer {tokens['ben']}"})
    assert stats.json()["tasks"] == 3  # the REST API answers from the same process


def test_plumb_collect_serve_runs_the_page_and_the_api_in_one_process(tmp_path):
    db = f"sqlite:///{tmp_path / 'collect.sqlite'}"
    engine, _, tokens = make_store(db)
    engine.dispose()
    port = free_port()
    config = REPO / "configs" / "collect" / "serve.yaml"
    command = [
        sys.executable,
        "-m",
        "plumb",
        "collect",
        "serve",
        "--config",
        str(config),
        "--db",
        db,
        "--port",
        str(port),
        "--output_dir",
        str(tmp_path / "out"),
    ]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base_url = f"http://127.0.0.1:{port}"
        for _ in range(300):  # bounds a broken start; a working one answers within seconds
            try:
                page = httpx.get(base_url + "/", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()
                time.sleep(0.2)
        else:
            pytest.fail("the server did not start")
        assert page.status_code == 200 and '"auth_required":true' in page.text
        stats = httpx.get(base_url + "/api/campaigns/demo/stats", headers={"Authorization": f"Bearer {tokens['ana']}"})
        assert stats.json()["tasks"] == 3
        assert "port: " in (tmp_path / "out" / "plumb_config.yaml").read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_share_link_is_refused_with_the_reason(tmp_path):
    from plumb.config import ConfigError

    with pytest.raises(ConfigError, match="share"):
        build_server(ServeArguments(db=str(tmp_path / "unused.sqlite"), share=True))


def start_serving(command: list[str], *, ready: str) -> tuple[subprocess.Popen, list[str]]:
    """Start a `plumb collect serve` subprocess and read its stdout until a line contains `ready`."""
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = []
    for line in server.stdout:  # ends when the process does: a failed start fails the assertion below
        lines.append(line)
        if ready in line:
            return server, lines
    pytest.fail(f"the server stopped before printing {ready!r}: {lines}")


def test_the_demo_config_starts_from_nothing_and_keeps_judgments_across_restarts(tmp_path):
    from gradio_client import Client

    db = tmp_path / "demo" / "collect.sqlite"  # its folder does not exist yet: init_db makes it
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "plumb",
        "collect",
        "serve",
        "--config",
        "configs/collect/demo.yaml",
        "--db",
        str(db),
        "--port",
        str(port),
        "--output_dir",
        str(tmp_path / "out"),
        "--generate_first",
        "2",
        "--generate_rest",
        "false",
    ]
    server, lines = start_serving(command, ready="log in as adam")
    try:
        assert f"http://127.0.0.1:{port}/" in lines[-5]
        assert "log in as alice  password alice-demo   (rater)" in "".join(lines)
        client = Client(f"http://127.0.0.1:{port}/", auth=("alice", "alice-demo"), verbose=False)
        shown = client.predict(api_name="/show_task")
        # The shipped answers: 40 pairs at once, and nothing generated first (no model is even loaded).
        assert "**40** left for you" in str(shown)
        client.predict(button_label("6", "B better"), "", [], "B, said better.", api_name="/judge")
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    # A second start on the same database imports nothing again and loses nothing.
    server, _ = start_serving(
        [*command[:-4], "--generate_first", "0", "--generate_rest", "false"], ready="log in as adam"
    )
    server.terminate()
    server.wait(timeout=30)
    engine = make_engine(str(db))
    sessions = session_factory(engine)
    (judgment,) = judgments_of(sessions, "alice")
    with sessions() as session:
        assert session.scalar(select(func.count(Task.id))) == 40 and abs(judgment.preference) == 2
    assert judgment.edit == "B, said better."  # the demo campaign asks raters to improve the better response
    engine.dispose()


def test_a_port_in_use_is_refused_before_any_set_up(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "plumb",
                "collect",
                "serve",
                "--config",
                "configs/collect/demo.yaml",
                "--db",
                str(tmp_path / "d.sqlite"),
                "--port",
                str(port),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
    assert result.returncode == 2 and f"port: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "d.sqlite").exists()  # nothing was set up
