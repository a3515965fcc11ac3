"""The `plumb` command: help at every level without heavy imports, version, doctor, clear errors."""

import io
import json
import logging
import os
import subprocess
import sys

import pytest

from plumb import __version__
from plumb.cli import configure_logging, main
from plumb.config import FLAGS_CACHE, ConfigError, check_flags, parse_config


def run_plumb(*args):
    return subprocess.run([sys.executable, "-m", "plumb", *args], capture_output=True, text=True, timeout=300)


def test_top_level_help_lists_stages_without_importing_torch_or_gradio():
    probe = (
        "import sys\nfrom plumb.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('heavy:', [m for m in ('torch', 'gradio', 'trl') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "sft" in result.stdout and "doctor" in result.stdout
    assert "heavy: []" in result.stdout


def test_version():
    result = run_plumb("--version")
    assert result.stdout.strip() == f"plumb {__version__}"


def test_stage_and_verb_help():
    stage = run_plumb("sft", "--help")
    assert stage.returncode == 0 and "train" in stage.stdout
    verb = run_plumb("sft", "train", "--help")
    assert verb.returncode == 0 and "--learning_rate" in verb.stdout and "--dataset_name" in verb.stdout


def test_unknown_command_fails():
    assert run_plumb("nonsense").returncode == 2
    assert run_plumb("sft", "nonsense").returncode == 2


def test_no_arguments_prints_help(capsys):
    assert main([]) == 0
    assert "COMMAND" in capsys.readouterr().out


def test_doctor_reports_what_a_run_needs(plumb_home):
    result = run_plumb("doctor")
    assert result.returncode == 0, result.stderr
    for row in ("torch", "device", "default policy", "default reward", "tracking", "data dir"):
        assert row in result.stdout
    assert str(plumb_home) in result.stdout


def test_config_error_is_one_clear_line(tmp_path):
    config = tmp_path / "sft.yaml"
    config.write_text("learning_rate: 1e-4\nnum_epochs: 3\n")
    result = run_plumb("sft", "train", "--config", str(config))
    assert result.returncode == 2
    assert "sft.yaml: unknown key 'num_epochs'" in result.stderr
    assert "Traceback" not in result.stderr


def test_progress_messages_follow_stderr_when_it_is_redirected_after_set_up(monkeypatch):
    # As when `main` runs twice in one process with stderr captured and closed in between (tests, notebooks):
    # a handler bound to the first stderr wrote "--- Logging error --- Traceback ..." to the second.
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging()
    first.close()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("collect").info("schema at %s", "0005")
    assert second.getvalue() == "[plumb] schema at 0005\n"


def test_a_misspelled_flag_gets_the_closest_one():
    from collect.quality import config_types

    with pytest.raises(ConfigError, match=r"unrecognized argument: --min_agrement \(did you mean --min_agreement\?\)"):
        parse_config(config_types(), ["--min_agrement", "0.5"])


def test_a_misspelled_flag_fails_before_the_stage_is_imported(tmp_path):
    # The first run records the verb's flags in the data dir; from then on a typo costs no torch import
    # (before: 10-30 s of imports, then "unknown option(s)" with no suggestion).
    env = {**os.environ, "PLUMB_HOME": str(tmp_path)}
    probe = (
        "import sys\nfrom plumb.cli import main\n"
        "status = main(['reward', 'train', '--learnig_rate', '1e-4'])\n"
        "print('status', status, 'heavy:', [m for m in ('torch', 'transformers', 'trl') if m in sys.modules])"
    )
    first = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    again = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    message = (
        "plumb reward train: error: command line: unrecognized argument: --learnig_rate (did you mean --learning_rate?)"  # noqa: E501
    )
    assert message in first.stderr and "status 2 heavy: ['torch'" in first.stdout
    assert message in again.stderr and "status 2 heavy: []" in again.stdout


def test_a_changed_definition_makes_the_recorded_flags_stale(tmp_path, monkeypatch):
    # A flag added to a config class (or a TRL upgrade) must not be refused by an old record.
    from collect.quality import config_types

    monkeypatch.setenv("PLUMB_HOME", str(tmp_path))
    parse_config(config_types(), [], prog="plumb collect quality")
    with pytest.raises(ConfigError, match="did you mean --min_gold"):
        check_flags("plumb collect quality", ["--min_golds", "3"])
    check_flags("plumb collect quality", ["--min_gol", "3", "--help"])  # an abbreviation argparse takes; help
    record = tmp_path / FLAGS_CACHE
    stale = record.read_text()
    source = next(iter(json.loads(stale).values()))["sources"]
    stamped = next(iter(source))
    record.write_text(stale.replace(json.dumps(source[stamped]), "[0, 0]"))
    check_flags("plumb collect quality", ["--min_golds", "3"])  # stale: left to the full parse
