"""`plumb reward train --hp_search` on a tiny reward model: real Optuna trials, best config, resumed study."""

import json

import optuna
import pytest
import yaml

from plumb.config import ConfigError, parse_config
from reward.train import cli, config_types, main
from tests.support.reward import reward_train_args

SPACE = {"learning_rate": {"low": 1e-4, "high": 1e-1, "log": True}, "freeze_layers": {"choices": [0, 1]}}


def write_search_config(path, output_dir, model_dir, trials=2):
    """A search config file: the tiny 2-step reward run, eval every step, two keys searched."""
    config = {
        "model_name_or_path": str(model_dir),
        "output_dir": str(output_dir),
        "max_steps": 2,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 16,
        "max_length": 64,
        "report_to": "none",
        "save_strategy": "no",
        "eval_strategy": "steps",
        "eval_steps": 1,
        "logging_steps": 1,
        "bootstrap_samples": 50,
        "hp_search": True,
        "hp_trials": trials,
        "hp_space": SPACE,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_search_writes_the_best_trial_as_a_config_that_trains_and_a_rerun_resumes(tmp_path, tiny_reward_dir):
    output_dir = tmp_path / "search"
    config = write_search_config(tmp_path / "search.yaml", output_dir, tiny_reward_dir)
    summary = main(*parse_config(config_types(), ["--config", str(config)]))

    # the study read back from its storage file, not from what the run returned
    study = optuna.load_study(study_name="plumb-reward", storage=f"sqlite:///{output_dir.resolve()}/hp_search.db")
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    first_params = [t.params for t in study.trials]  # Study.trials reads the storage anew on each access
    assert len(first_params) == 2 and finished
    best = max(finished, key=lambda t: t.value)
    assert 0.0 <= best.value <= 1.0
    assert summary["hp_best_eval_accuracy"] == pytest.approx(best.value)
    # each trial's intermediate accuracy was reported at each of its 2 evaluations, for the pruner
    assert all(sorted(t.intermediate_values) == [1, 2] for t in finished)

    best_config = yaml.safe_load((output_dir / "best_config.yaml").read_text())
    assert best_config["learning_rate"] == pytest.approx(best.params["learning_rate"])
    assert best_config["freeze_layers"] == best.params["freeze_layers"]
    assert not {"hp_search", "hp_space", "hp_trials"} & set(best_config)
    assert best_config["max_steps"] == 2 and best_config["output_dir"] == str(output_dir / "best")
    assert (output_dir / "hp_search.png").read_bytes()[:4] == b"\x89PNG"

    # the best config is a normal run: it parses with the trial's values and trains
    best_file = str(output_dir / "best_config.yaml")
    script_args, training_args, _ = rerun = parse_config(config_types(), ["--config", best_file])
    assert not script_args.hp_search and training_args.learning_rate == pytest.approx(best.params["learning_rate"])
    metrics = main(*rerun)
    assert "eval_accuracy" in metrics and (output_dir / "best" / "metrics.json").is_file()
    # and it trains as the best trial did: same seed, same values, so the same held-out accuracy at its last step
    flags = ["--save_strategy", "steps", "--save_steps", "2", "--output_dir", str(tmp_path / "again")]
    main(*parse_config(config_types(), ["--config", best_file, *flags]))
    history = json.loads((tmp_path / "again" / "checkpoint-2" / "trainer_state.json").read_text())["log_history"]
    assert [e["eval_accuracy"] for e in history if "eval_accuracy" in e] == pytest.approx(
        [best.intermediate_values[1], best.intermediate_values[2]], abs=1e-6
    )

    # a second search in the same folder adds a trial to the same study
    assert cli(["--config", str(config), "--hp_trials", "1"], prog="plumb reward train") == 0
    resumed = optuna.load_study(study_name="plumb-reward", storage=f"sqlite:///{output_dir.resolve()}/hp_search.db")
    assert [t.number for t in resumed.trials] == [0, 1, 2]
    assert [t.params for t in resumed.trials[:2]] == first_params


def test_a_key_the_reward_stage_cannot_search_is_refused_naming_key_and_file(tmp_path, tiny_reward_dir):
    config = write_search_config(tmp_path / "bad.yaml", tmp_path / "out", tiny_reward_dir)
    values = yaml.safe_load(config.read_text())
    values["hp_space"] = {"lora_r": {"choices": [8, 16]}}
    config.write_text(yaml.safe_dump(values))
    with pytest.raises(ConfigError, match=r"bad\.yaml: hp_space key 'lora_r' cannot be searched"):
        cli(["--config", str(config)], prog="plumb reward train")


def test_hp_search_without_a_space_is_refused(tmp_path, tiny_reward_dir):
    args = reward_train_args(tmp_path, tiny_reward_dir, "--hp_search", "true")
    with pytest.raises(ConfigError, match="needs an hp_space"):
        main(*args)
