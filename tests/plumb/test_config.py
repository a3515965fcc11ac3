"""Config parsing: YAML + flags into TRL's dataclasses, with errors that name the key and the file."""

import inspect
import re
from pathlib import Path

import pytest
import yaml
from trl import ModelConfig, SFTConfig

from plumb.config import (
    ConfigError,
    has_accelerator,
    parse_config,
    read_yaml,
    resolved_config,
    save_resolved_config,
)
from sft.config import SFTScriptArguments

TYPES = (SFTScriptArguments, SFTConfig, ModelConfig)
REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def parse(tmp_path, text, *flags):
    path = write(tmp_path, text)
    return parse_config(TYPES, ["--config", str(path), "--output_dir", str(tmp_path / "out"), *flags])


def test_yaml_values_are_typed_and_flags_override_them(tmp_path):
    script, training, model = parse(
        tmp_path,
        "learning_rate: 5.0e-5\nmax_length: 128\nmodel_name_or_path: default\nreport_to: [tensorboard]\n",
        "--max_length",
        "64",
    )
    assert training.learning_rate == pytest.approx(5e-5)
    assert training.max_length == 64
    assert training.report_to == ["tensorboard"]
    assert model.model_name_or_path == "default"
    assert script.dataset_name == "builtin:instruct"


def test_false_in_the_file_turns_off_a_key_that_defaults_to_true(tmp_path):
    # TRL defaults gradient_checkpointing to True; argparse also knows it as --no_gradient_checkpointing.
    script, training, _ = parse(tmp_path, "gradient_checkpointing: false\neval_before_train: false\n")
    assert training.gradient_checkpointing is False and script.eval_before_train is False
    _, training, _ = parse(tmp_path, "seed: 3\n", "--gradient_checkpointing", "false")
    assert training.gradient_checkpointing is False


def test_unknown_key_names_key_file_and_suggestion(tmp_path):
    with pytest.raises(ConfigError) as error:
        parse(tmp_path, "learnig_rate: 0.1\n")
    message = str(error.value)
    assert "run.yaml" in message and "'learnig_rate'" in message and "learning_rate" in message


@pytest.mark.parametrize(
    "text, key",
    [
        ("learning_rate: fast\n", "learning_rate"),
        ("num_train_epochs: [1, 2]\n", "num_train_epochs"),
        ("lr_scheduler_type: sometimes\n", "lr_scheduler_type"),
        ("max_steps: 2.5\n", "max_steps"),
        ("packing: maybe\n", "packing"),
    ],
)
def test_bad_value_names_key_and_file(tmp_path, text, key):
    with pytest.raises(ConfigError, match=rf"run\.yaml: key '{key}'"):
        parse(tmp_path, text)


def test_bad_flag_on_the_command_line_is_named(tmp_path):
    with pytest.raises(ConfigError, match="command line.*learning_rate"):
        parse(tmp_path, "seed: 1\n", "--learning_rate", "fast")
    with pytest.raises(ConfigError, match="command line: unrecognized argument: --no_such_flag"):
        parse(tmp_path, "seed: 1\n", "--no_such_flag", "3")


def test_value_refused_by_the_dataclass_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="run.yaml"):
        parse(tmp_path, "eval_strategy: steps\neval_steps: 0\nload_best_model_at_end: true\nsave_strategy: 'no'\n")


def test_file_that_is_not_a_mapping_or_missing(tmp_path):
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        read_yaml(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="not found"):
        read_yaml(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(write(tmp_path, "a: [1, 2\n"))


@pytest.mark.skipif(has_accelerator(), reason="checks the CPU-only default")
def test_mixed_precision_is_off_without_a_gpu(tmp_path):
    _, training, _ = parse(tmp_path, "seed: 1\n")
    assert training.bf16 is False and training.fp16 is False
    with pytest.raises(ConfigError, match=r"run\.yaml: key 'bf16': mixed precision needs a GPU"):
        parse(tmp_path, "bf16: true\n")


def test_env_section_sets_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("PLUMB_TEST_VAR", raising=False)
    parse(tmp_path, "env:\n  PLUMB_TEST_VAR: hello\n")
    import os

    assert os.environ["PLUMB_TEST_VAR"] == "hello"


def test_resolved_config_reparses_to_the_same_values(tmp_path):
    first = parse(tmp_path, "learning_rate: 0.001\nmax_length: 99\nreport_to: [tensorboard]\nuse_peft: true\n")
    saved = save_resolved_config(tmp_path / "out", *first)
    again = parse_config(TYPES, ["--config", str(saved)])
    assert resolved_config(*again) == resolved_config(*first)
    assert again[1].learning_rate == 0.001 and again[2].use_peft is True


def _verb_of(config_path: Path) -> str:
    header = config_path.read_text()
    match = re.search(r"#\s+plumb (\w+ [\w-]+) --config", header)
    assert match, f"{config_path} must say in its header comment the command that runs it"
    return match.group(1)


@pytest.mark.parametrize(
    "config_path",
    # accelerate's own files, campaign definitions (checked by collect's campaign loader and its tests) and
    # Prometheus's alerting rules (checked by promtool in tests/collect/test_monitoring_rules.py)
    sorted(
        p for p in (REPO / "configs").rglob("*.yaml") if not {"accelerate", "campaigns", "monitoring"} & set(p.parts)
    ),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_every_shipped_config_parses_against_its_command(config_path, tmp_path):
    import importlib

    from plumb.cli import STAGES

    stage, verb = _verb_of(config_path).split()
    verbs = importlib.import_module(STAGES[stage][0]).VERBS
    module = importlib.import_module(verbs[verb][0])
    argv = ["--config", str(config_path), "--output_dir", str(tmp_path)]
    # A verb whose dataclasses depend on the config (e.g. the RL algorithm) takes the command line.
    takes_argv = bool(inspect.signature(module.config_types).parameters)
    parse_config(module.config_types(argv) if takes_argv else module.config_types(), argv)


def test_every_accelerate_config_is_a_mapping():
    for path in (REPO / "configs" / "accelerate").glob("*.yaml"):
        assert isinstance(yaml.safe_load(path.read_text()), dict), path
