"""The `plumb collect` command: every verb answers --help, errors are one line, the API serves on loopback."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from collect import export, leaderboard, quality
from collect.cli import VERBS
from collect.init import main as init_main
from collect.store import Task
from plumb.config import parse_config
from tests.support.campaigns import judge, make_store

REPO = Path(__file__).resolve().parents[2]
MINE = ("init", "add-rater", "import", "generate", "export", "serve-api")


def plumb(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "plumb", "collect", *args],
        capture_output=True,
        text=True,
        timeout=300,
        **{"cwd": REPO, **kwargs},
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


@pytest.mark.parametrize(
    "verb",
    [
        ("export", "--campaign", "demo"),
        ("token", "list", "alice"),
        ("serve-api", "--port", "0"),
    ],
    ids=lambda verb: verb[0],
)
def test_a_verb_that_reads_the_store_never_creates_it(tmp_path, verb):
    # Before: export created outptus/collect.sqlite (and its folder), then said to run init.
    typo = tmp_path / "outptus" / "collect.sqlite"
    result = plumb(*verb, "--db", str(typo), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert str(typo) in result.stderr and "plumb collect init" in result.stderr
    assert "Traceback" not in result.stderr
    assert not typo.parent.exists()


def test_export_with_no_db_creates_no_database_in_the_data_dir(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "PLUMB_HOME": str(home), "PLUMB_DB": ""}
    result = plumb("export", "--output_dir", str(tmp_path / "out"), env=env)
    assert result.returncode == 2 and f"run `plumb collect init --db {home / 'collect.sqlite'}`" in result.stderr
    assert not (home / "collect.sqlite").exists()


def test_the_demo_export_reads_the_database_make_demo_serves():
    configs = REPO / "configs" / "collect"
    demo_db = yaml.safe_load((configs / "demo.yaml").read_text())["db"]
    assert yaml.safe_load((configs / "export.yaml").read_text())["db"] == demo_db


def header_export_command(config: Path) -> list[str]:
    """The `plumb collect export ...` command a demo config's header says to run first, as arguments after `export`."""
    line = next(line for line in config.read_text().splitlines() if "plumb collect export" in line)
    return line.split("plumb collect export", 1)[1].split()


@pytest.mark.parametrize(
    ("config", "module", "source"),
    [("quality-demo.yaml", quality, "judgments"), ("leaderboard-demo.yaml", leaderboard, "battles")],
)
def test_the_quality_and_leaderboard_demos_read_the_demo_databases_export(tmp_path, config, module, source):
    # Before: both read synthetic builtin data, so a demo user's own judgments reached neither.
    configs = REPO / "configs" / "collect"
    _, sessions, _ = make_store(str(tmp_path / "demo.sqlite"), prompts=4)
    with sessions() as session:
        tasks = session.scalars(select(Task.id).order_by(Task.id)).all()
    for rater in ("ana", "ben"):
        for number, task in enumerate(tasks):
            judge(sessions, rater, task, preference=1 if number % 3 else -1, seconds_spent=5.0)

    export_flags = header_export_command(configs / config)
    written = export_flags[export_flags.index("--output_dir") + 1]
    assert Path(yaml.safe_load((configs / config).read_text())[source]) == Path(written)
    moved = [*export_flags, "--db", str(tmp_path / "demo.sqlite"), "--output_dir", str(tmp_path / written)]
    export.main(*parse_config(export.config_types(), ["--config", str(REPO / moved[1]), *moved[2:]]))
    flags = ["--config", str(configs / config), f"--{source}", str(tmp_path / written), "--output_dir", str(tmp_path)]
    result = module.main(*parse_config(module.config_types(), flags))
    assert (tmp_path / f"{Path(module.__file__).stem}.json").is_file() and result


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
