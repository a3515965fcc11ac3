"""`plumb align ppo`: RLOO and GRPO steps on tiny models with an encoder reward model, and the guards."""

import json
from pathlib import Path

import pytest

from align.guards import Limits, last_good_checkpoint, violations
from align.ppo import config_types, main
from align.rewards import penalize_unfinished
from plumb.config import parse_config


def test_violations_name_what_crossed_which_limit():
    logs = {"kl": 0.8, "completions/mean_length": 50.0, "entropy": 0.01, "reward_ensemble_std": 0.3}
    assert violations(logs, Limits()) == []
    found = violations(logs, Limits(max_kl=0.5, max_mean_length=60, min_entropy=0.1, max_reward_disagreement=0.2))
    assert len(found) == 3
    assert any("KL" in f and "0.5" in f for f in found) and any("entropy" in f for f in found)
    assert violations({"loss": 1.0}, Limits(max_kl=0.1)) == []  # not logged: nothing to judge


def test_last_good_checkpoint_is_the_newest_at_or_before_the_good_step(tmp_path):
    for step in (2, 4, 6):
        (tmp_path / f"checkpoint-{step}").mkdir()
    assert last_good_checkpoint(tmp_path, 5).name == "checkpoint-4"
    assert last_good_checkpoint(tmp_path, 6).name == "checkpoint-6"
    assert last_good_checkpoint(tmp_path, 1) is None


def test_unfinished_completions_are_penalised():
    rewards, share = penalize_unfinished([1.0, 1.0, 2.0], [[5, 2], [5, 7], []], stop_ids={2}, penalty=0.5)
    assert rewards.tolist() == [1.0, 0.5, 1.5] and share == pytest.approx(2 / 3)


def ppo_args(out_dir, policy, reward, *flags):
    argv = [
        "--model_name_or_path",
        policy,
        "--reward_model",
        reward,
        "--output_dir",
        str(out_dir),
        "--max_prompts",
        "4",
        "--num_generations",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--max_completion_length",
        "8",
        "--max_steps",
        "2",
        "--logging_steps",
        "1",
        "--report_to",
        "none",
        "--save_strategy",
        "no",
        "--learning_rate",
        "1e-2",
        "--seed",
        "0",
        *flags,
    ]
    return parse_config(config_types(argv), argv)


@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
def test_two_steps_against_an_encoder_reward_model(tmp_path, tiny_policy_dir, tiny_reward_dir, algorithm):
    args = ppo_args(tmp_path / "out", tiny_policy_dir, tiny_reward_dir, "--algorithm", algorithm)
    assert type(args[1]).__name__ == ("GRPOConfig" if algorithm == "grpo" else "RLOOConfig")
    metrics = main(*args)
    assert metrics["steps"] == 2 and not metrics["guard_tripped"]
    assert metrics["last_reward"] is not None
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_guard_stops_the_run_and_says_why(tmp_path, tiny_policy_dir, tiny_reward_dir):
    args = ppo_args(
        tmp_path / "out",
        tiny_policy_dir,
        tiny_reward_dir,
        "--max_steps",
        "4",
        "--max_mean_length",
        "0.5",
        "--save_strategy",
        "steps",
        "--save_steps",
        "1",
    )
    metrics = main(*args)
    assert metrics["guard_tripped"] and metrics["steps"] < 4
    report = json.loads((Path(tmp_path) / "out" / "guard.json").read_text())
    assert "max_mean_length" in report["reasons"][0] and report["last_good_step"] == 0
    assert not (tmp_path / "out" / "model.safetensors").exists()  # the over-optimised policy is not the result
