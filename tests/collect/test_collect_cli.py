"""The `plumb collect` command: every verb answers --help, errors are one line, the API serves on loopback."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from collect.cli import VERBS
from collect.init import main as init_main

REPO = Path(__file__).resolve().parents[2]
MINE = ("init", "add-rater", "import", "generate", "export", "serve-api")


def plumb(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "plumb", "collect", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        **kwargs,
    )


def test_the_stage_lists_its_verbs():
    result = plumb("--help")
    assert result.returncode == 0 and all(verb in result.stdout for verb in MINE)


@pytest.mark.parametrize("verb", MINE)
def test_every_verb_has_help(verb):
    assert verb in VERBS
    result = plumb(verb, "--help")
    assert result.returncode == 0 and "--db" in result.stdout, result.stderr


def test_export_of_an_unknown_campaign_is_one_clear_line(tmp_path):
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    result = plumb("export", "--campaign", "nope", "--db", db, "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 2 and "no campaign named 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_api_answers_on_loopback(tmp_path):
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "plumb", "collect", "serve-api", "--db", db, "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(150):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the API did not start")
        assert response.json()["info"]["title"] == "Plumb collect API"
        assert httpx.get(f"http://127.0.0.1:{port}/api/campaigns/x/next").status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)
