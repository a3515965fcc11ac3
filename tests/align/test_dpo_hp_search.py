"""`plumb align dpo --hp_search` on a tiny policy: Optuna trials on held-out eval_rewards/accuracies, each trial's
beta in the loss it trains with, LoRA ranks per trial, the best trial rerun as a normal run, a resumed study."""

import json

import pytest
import yaml

from align.dpo import cli, config_types, main
from plumb.config import ConfigError, parse_config
from tests.support.hp_search import complete, load_study, record_trials

TOPICS = ["a colour", "a fruit", "a planet", "a metal", "an ocean", "a river", "a tree", "a bird", "a month", "a dance"]
ANSWERS = ["Blue.", "Apple.", "Mars.", "Iron.", "The Pacific.", "The Nile.", "Oak.", "Robin.", "May.", "Tango."]
NOS = ["No.", "I won't.", "Ask later.", "Hmm", "?"]
SPACE = {"beta": {"low": 0.01, "high": 5.0, "log": True}, "learning_rate": {"low": 1e-3, "high": 1e-1, "log": True}}


def msgs(role, text):
    return [{"role": role, "content": text}]


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    """Short conversational pairs: 4 to train on, and 6 held out so the accuracy has some resolution."""
    folder = tmp_path_factory.mktemp("search_pairs")
    rows = [
        {"prompt": msgs("user", f"Name {topic}."), "chosen": msgs("assistant", yes), "rejected": msgs("assistant", no)}
        for topic, yes, no in zip(TOPICS, ANSWERS, NOS * 2)
    ]
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows[:4]))
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows[4:]))
    return str(folder)


def write_search_config(path, output_dir, model_dir, data, *, space=SPACE, trials=3, **extra):
    """A search config file: the tiny 2-step DPO run of test_dpo.py, evaluated every step."""
    config = {
        "model_name_or_path": str(model_dir),
        "dataset_name": data,
        "output_dir": str(output_dir),
        "max_steps": 2,
        "per_device_train_batch_size": 2,
        "per_device_eval_batch_size": 16,
        "precompute_ref_batch_size": 16,
        "max_length": 128,
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


def test_each_trial_trains_with_its_beta_and_the_best_reruns_as_a_normal_run(
    tmp_path, seeded_policy_dir, pairs_dir, monkeypatch
):
    records = record_trials(monkeypatch)
    output_dir = tmp_path / "search"
    config = write_search_config(tmp_path / "search.yaml", output_dir, seeded_policy_dir, pairs_dir)
    summary = main(*parse_config(config_types(), ["--config", config]))

    study = load_study(output_dir, "dpo")
    first_params = [t.params for t in study.trials]
    assert len(first_params) == 3
    for params in first_params:
        assert 0.01 <= params["beta"] <= 5.0 and 1e-3 <= params["learning_rate"] <= 1e-1
    # the trainer's own beta, which its loss reads, was each trial's beta in every evaluation of that trial
    for trial in study.trials:
        seen = [r for r in records if r["trial"] == trial.number]
        assert seen and all(r["beta"] == pytest.approx(trial.params["beta"]) for r in seen)
    finished = complete(study)
    assert len({t.value for t in finished}) > 1  # the trials differ, so picking the best is a real choice
    best = max(finished, key=lambda t: t.value)
    assert study.best_trial.value == best.value and summary["hp_best_trial"] == best.number
    assert summary["hp_best_eval_rewards/accuracies"] == pytest.approx(best.value)
    assert json.loads((output_dir / "hp_search.json").read_text()) == summary

    best_file = str(output_dir / "best_config.yaml")
    best_config = yaml.safe_load((output_dir / "best_config.yaml").read_text())
    assert not {"hp_search", "hp_space", "hp_trials"} & set(best_config)
    script_args, training_args, _ = rerun = parse_config(config_types(), ["--config", best_file])
    assert not script_args.hp_search and training_args.beta == pytest.approx(best.params["beta"])
    # a normal run with the best values ends where the best trial ended: the held-out loss, which beta scales,
    # and the implicit reward margins (beta * log-ratios) are the trial's own
    metrics = main(*rerun)
    last = [r for r in records if r["trial"] == best.number and r["step"] == 2][0]["metrics"]
    for key in ("eval_loss", "eval_rewards/margins", "eval_rewards/accuracies"):
        assert metrics[key] == pytest.approx(last[key], abs=1e-5), key

    # a second search in the same folder adds a trial to the same study
    assert cli(["--config", config, "--hp_trials", "1"], prog="plumb align dpo") == 0
    resumed = load_study(output_dir, "dpo")
    assert [t.number for t in resumed.trials] == [0, 1, 2, 3]
    assert [t.params for t in resumed.trials[:3]] == first_params


def test_each_lora_trial_trains_an_adapter_of_its_rank(tmp_path, seeded_policy_dir, pairs_dir, monkeypatch):
    records = record_trials(monkeypatch)
    space = {"lora_r": {"choices": [2, 4, 8]}, "beta": {"choices": [0.1, 1.0]}}
    lora = {"use_peft": True, "lora_target_modules": ["q_proj", "v_proj"], "lora_alpha": 16, "learning_rate": 1e-2}
    output_dir = tmp_path / "lora"
    config = write_search_config(tmp_path / "lora.yaml", output_dir, seeded_policy_dir, pairs_dir, space=space, **lora)
    cli(["--config", config], prog="plumb align dpo")

    study = load_study(output_dir, "dpo")
    assert len(study.trials) == 3 and len({t.params["lora_r"] for t in study.trials}) > 1
    for trial in study.trials:
        seen = [r for r in records if r["trial"] == trial.number]
        r = trial.params["lora_r"]
        assert seen and all({s[0] for s in rec["lora_A"]} == {r} and rec["lora_A_trained"] for rec in seen)
        assert all(rec["lora_scaling"] == {16 / r} and rec["beta"] == trial.params["beta"] for rec in seen)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"label_smoothing": {"low": 0.0, "high": 0.5}}, "hp_space key 'label_smoothing' cannot be searched here"),
        ({"lora_alpha": {"choices": [8, 16]}}, "hp_space key 'lora_alpha' is a LoRA setting: it needs use_peft"),
    ],
)
def test_a_bad_space_is_refused_naming_the_key_and_the_file(tmp_path, pairs_dir, space, message):
    config = write_search_config(tmp_path / "bad.yaml", tmp_path / "out", "no-such-model", pairs_dir, space=space)
    with pytest.raises(ConfigError, match=rf"bad\.yaml: {message}"):
        cli(["--config", config], prog="plumb align dpo")


def test_a_search_without_held_out_pairs_is_refused(tmp_path, pairs_dir):
    config = write_search_config(tmp_path / "s.yaml", tmp_path / "out", "no-such-model", f"{pairs_dir}/train.jsonl")
    with pytest.raises(ConfigError, match="hp_search needs held-out pairs"):
        cli(["--config", config, "--test_size", "0"], prog="plumb align dpo")
