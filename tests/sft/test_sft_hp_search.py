"""`plumb sft train --hp_search` on a tiny policy: real Optuna trials on held-out eval_loss, the best trial rerun as a
normal run, a resumed study, LoRA ranks searched per trial, and bad spaces refused before any model loads."""

import json

import pytest
import yaml

from plumb.config import ConfigError, parse_config
from sft.train import cli, config_types, main
from tests.support.hp_search import complete, load_study, record_trials

SPACE = {"learning_rate": {"low": 1e-4, "high": 1e-1, "log": True}, "per_device_train_batch_size": {"choices": [1, 2]}}
TRAIN = [("Name a colour.", "Blue."), ("What is two plus two?", "Four."), ("Which animal barks?", "A dog.")]
TEST = [("What colour is snow?", "White."), ("How many legs has a spider?", "Eight legs.")]


def conversation(user: str, reply: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]}


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory):
    """A folder with a train and a test split, so the held-out conversations are known here."""
    folder = tmp_path_factory.mktemp("sft_data")
    for name, rows in (("train", TRAIN), ("test", TEST)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(conversation(*row)) + "\n" for row in rows))
    return str(folder)


def write_search_config(path, output_dir, model_dir, data, *, space=SPACE, trials=3, **extra):
    """A search config file: the tiny 2-step SFT run, evaluated every step."""
    config = {
        "model_name_or_path": str(model_dir),
        "dataset_name": data,
        "output_dir": str(output_dir),
        "max_steps": 2,
        "per_device_eval_batch_size": 8,
        "max_length": 64,
        "report_to": "none",
        "save_strategy": "no",
        "eval_strategy": "steps",
        "eval_steps": 1,
        "logging_steps": 1,
        "seed": 0,
        "hp_search": True,
        "hp_trials": trials,
        "hp_space": space,
        **extra,
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_search_keeps_the_lowest_eval_loss_writes_a_config_that_reruns_it_and_resumes(
    tmp_path, tiny_policy_dir, sft_data
):
    output_dir = tmp_path / "search"
    config = write_search_config(tmp_path / "search.yaml", output_dir, tiny_policy_dir, sft_data)
    summary = main(*parse_config(config_types(), ["--config", config]))

    study = load_study(output_dir, "sft")
    first_params = [t.params for t in study.trials]
    assert len(first_params) == 3
    for params in first_params:
        assert 1e-4 <= params["learning_rate"] <= 1e-1 and params["per_device_train_batch_size"] in (1, 2)
    finished = complete(study)
    assert len({round(t.value, 6) for t in finished}) > 1  # the trials differ, so picking the best is a real choice
    best = min(finished, key=lambda t: t.value)
    assert summary["hp_best_trial"] == best.number and summary["hp_best_eval_loss"] == pytest.approx(best.value)
    assert json.loads((output_dir / "hp_search.json").read_text()) == summary
    assert (output_dir / "hp_search.png").read_bytes()[:4] == b"\x89PNG"
    assert all(sorted(t.intermediate_values) == [1, 2] for t in finished)  # reported at each eval, for the pruner

    best_file = str(output_dir / "best_config.yaml")
    best_config = yaml.safe_load((output_dir / "best_config.yaml").read_text())
    assert not {"hp_search", "hp_space", "hp_trials"} & set(best_config)
    script_args, training_args, model_args = rerun = parse_config(config_types(), ["--config", best_file])
    assert not script_args.hp_search and training_args.learning_rate == pytest.approx(best.params["learning_rate"])
    assert training_args.per_device_train_batch_size == best.params["per_device_train_batch_size"]
    # the best config is a normal run, and it trains as the best trial did: the same held-out loss at its end
    metrics = main(*rerun)
    assert metrics["eval_loss"] == pytest.approx(best.intermediate_values[2], abs=1e-5)
    assert (output_dir / "best" / "metrics.json").is_file()

    # a second search in the same folder adds a trial to the same study
    assert cli(["--config", config, "--hp_trials", "1"], prog="plumb sft train") == 0
    resumed = load_study(output_dir, "sft")
    assert [t.number for t in resumed.trials] == [0, 1, 2, 3]
    assert [t.params for t in resumed.trials[:3]] == first_params


def test_each_lora_trial_trains_an_adapter_of_its_own_rank_and_scale(tmp_path, tiny_policy_dir, sft_data, monkeypatch):
    records = record_trials(monkeypatch)
    space = {"lora_r": {"choices": [2, 4, 8]}, "lora_alpha": {"choices": [4, 32]}}
    lora = {"use_peft": True, "lora_target_modules": ["q_proj", "v_proj"], "learning_rate": 1e-2}
    output_dir = tmp_path / "lora"
    config = write_search_config(tmp_path / "lora.yaml", output_dir, tiny_policy_dir, sft_data, space=space, **lora)
    cli(["--config", config, "--hp_trials", "3"], prog="plumb sft train")

    study = load_study(output_dir, "sft")
    assert len(study.trials) == 3
    for trial in study.trials:
        seen = [r for r in records if r["trial"] == trial.number]
        assert seen, f"trial {trial.number} was never evaluated"
        r, alpha = trial.params["lora_r"], trial.params["lora_alpha"]
        for record in seen:  # the model trained in the trial: 2 layers x (q, v) adapters, each of rank r
            assert {shape[0] for shape in record["lora_A"]} == {r} and record["lora_A_trained"]
            assert record["lora_scaling"] == {alpha / r}
    ranks = {t.params["lora_r"] for t in study.trials}
    assert len(ranks) > 1  # not one rank for every trial

    # the best config reruns as a LoRA run with the best rank
    best = yaml.safe_load((output_dir / "best_config.yaml").read_text())
    assert best["use_peft"] is True and best["lora_r"] == study.best_trial.params["lora_r"]


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"beta": {"low": 0.1, "high": 1.0}}, "hp_space key 'beta' cannot be searched here"),
        ({"lora_r": {"choices": [4, 8]}}, "hp_space key 'lora_r' is a LoRA setting: it needs use_peft"),
        ({"learning_rate": {"low": 1e-3}}, "hp_space key 'learning_rate': a range needs both low and high"),
    ],
)
def test_a_bad_space_is_refused_naming_the_key_and_the_file(tmp_path, sft_data, space, message):
    config = write_search_config(tmp_path / "bad.yaml", tmp_path / "out", "no-such-model", sft_data, space=space)
    with pytest.raises(ConfigError, match=rf"bad\.yaml: {message}"):
        cli(["--config", config], prog="plumb sft train")


def test_a_search_without_held_out_data_is_refused(tmp_path, sft_data):
    train_only = f"{sft_data}/train.jsonl"
    config = write_search_config(tmp_path / "s.yaml", tmp_path / "out", "no-such-model", train_only)
    with pytest.raises(ConfigError, match="hp_search needs held-out conversations"):
        cli(["--config", config, "--test_size", "0"], prog="plumb sft train")
    no_space = write_search_config(tmp_path / "n.yaml", tmp_path / "out", "no-such-model", sft_data, space={})
    with pytest.raises(ConfigError, match=r"n\.yaml: hp_search needs an hp_space"):
        cli(["--config", no_space], prog="plumb sft train")
