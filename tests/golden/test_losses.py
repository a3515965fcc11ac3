"""Golden values: the first training steps of each Plumb trainer against stored references.

A fixed-seed 4-step run of `plumb sft train`, `plumb reward train`, `plumb align dpo`,
`plumb align ppo` and `plumb align online` (RLOO and GRPO) on tiny models logs at every step;
the per-step loss, the gradient norm and figures of the stage's own (the reward model's and
DPO's margins, online RL's mean reward and KL, PPO's value loss, clipped share and mean value)
are compared with tests/golden/references/<name>.json within the tolerance in conftest.py. A
silent change in the maths (a loss, a default, a masking, a baseline) moves these numbers.
Regenerate on purpose: `PLUMB_UPDATE_GOLDEN=1 pytest tests/golden`.
"""

import importlib
import json
from pathlib import Path

import pytest

from plumb.config import parse_config
from tests.support import golden
from tests.support.golden import GOLDEN_SEED, check_golden, step_series

STEPS = 4


def common_flags(out_dir) -> list[str]:
    """What every golden run shares: a few logged steps, CPU fp32, fixed seeds, nothing saved or reported."""
    return [
        "--output_dir",
        str(out_dir),
        "--max_steps",
        str(STEPS),
        "--logging_steps",
        "1",
        "--report_to",
        "none",
        "--save_strategy",
        "no",
        "--seed",
        str(GOLDEN_SEED),
        "--data_seed",
        str(GOLDEN_SEED),
        "--dataloader_num_workers",
        "0",
        "--use_cpu",
        "true",
        "--bf16",
        "false",
        "--dtype",
        "float32",
    ]


def flags_dict(argv: list[str]) -> dict[str, str]:
    """A run's flags for the reference file: the output folder left out, other paths by their file or folder name."""
    pairs = dict(zip(argv[::2], argv[1::2]))
    return {k.lstrip("-"): Path(v).name if "/" in v else v for k, v in pairs.items() if k != "--output_dir"}


def offline_flags(data: str, *, batch: int) -> list[str]:
    """The flags the offline trainers (SFT, reward, DPO) share: the data file, all of it for training, a small batch."""
    return [
        "--dataset_name",
        data,
        "--test_size",
        "0",
        "--per_device_train_batch_size",
        str(batch),
        "--max_length",
        "64",
        "--learning_rate",
        "1e-2",
    ]


def run_stage(stage: str, tmp_path, model: str, flags: list[str]) -> list[str]:
    """Run a stage's `main` (e.g. "align.dpo") on `model` with the common flags and `flags`; returns its argv."""
    module = importlib.import_module(stage)
    argv = ["--model_name_or_path", model, *common_flags(tmp_path / "out"), *flags]
    # `plumb align online` chooses its config classes by the algorithm named in the arguments.
    types = module.config_types(argv) if stage == "align.online" else module.config_types()
    module.main(*parse_config(types, argv))
    return argv


def run_sft(tmp_path, policy, data, *extra):
    flags = ["--eval_before_train", "false", *offline_flags(data, batch=2), *extra]
    return run_stage("sft.train", tmp_path, policy, flags)


def test_sft_first_steps(tmp_path, golden_policy_dir, golden_data, log_history):
    argv = run_sft(tmp_path, golden_policy_dir, golden_data["sft"])
    measured = step_series(log_history[-1], ("loss", "grad_norm"))
    check_golden("sft", measured, config=flags_dict(argv))


def run_reward(tmp_path, reward_model, data, *extra):
    return run_stage("reward.train", tmp_path, reward_model, [*offline_flags(data, batch=4), *extra])


def test_reward_first_steps(tmp_path, golden_reward_dir, golden_data, log_history):
    argv = run_reward(tmp_path, golden_reward_dir, golden_data["pairs"])
    measured = step_series(log_history[-1], ("loss", "margin", "grad_norm"))
    check_golden("reward", measured, config=flags_dict(argv))


def run_dpo(tmp_path, policy, data, *extra):
    return run_stage("align.dpo", tmp_path, policy, [*offline_flags(data, batch=2), "--beta", "0.1", *extra])


def test_dpo_first_steps(tmp_path, golden_policy_dir, golden_data, log_history):
    argv = run_dpo(tmp_path, golden_policy_dir, golden_data["pairs"])
    measured = step_series(log_history[-1], ("loss", "rewards/margins", "grad_norm"))
    check_golden("dpo", measured, config=flags_dict(argv))


def run_online(tmp_path, policy, reward_model, data, algorithm, *extra):
    flags = [
        "--algorithm",
        algorithm,
        "--reward_model",
        reward_model,
        "--dataset_name",
        data,
        "--num_generations",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--max_completion_length",
        "8",
        "--learning_rate",
        "1e-2",
        "--beta",
        "0.05",
        *extra,
    ]
    return run_stage("align.online", tmp_path, policy, flags)


@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
def test_online_rl_first_steps(tmp_path, golden_policy_dir, golden_reward_dir, golden_data, log_history, algorithm):
    # GRPO's default divides by the group's reward spread; the tiny runs' completions all run out of tokens and
    # score within 1e-5 of each other, so that division turned float noise into advantages (a golden that moved
    # with the CPU). Unscaled advantages keep the figures well conditioned.
    extra = ("--scale_rewards", "none") if algorithm == "grpo" else ()
    argv = run_online(tmp_path, golden_policy_dir, golden_reward_dir, golden_data["prompts"], algorithm, *extra)
    measured = step_series(log_history[-1], ("loss", "reward", "kl", "grad_norm"))
    check_golden(f"online_{algorithm}", measured, config=flags_dict(argv))


def test_ppo_first_steps(tmp_path, golden_policy_dir, golden_reward_dir, golden_data, log_history):
    flags = ["--reward_model", golden_reward_dir, "--dataset_name", golden_data["prompts"]]
    flags += ["--per_device_train_batch_size", "4", "--num_mini_batches", "2", "--max_completion_length", "8"]
    flags += ["--learning_rate", "1e-2", "--kl_coef", "0.05", "--max_grad_norm", "1.0"]
    argv = run_stage("align.ppo", tmp_path, golden_policy_dir, flags)
    figures = ("loss", "reward", "kl", "grad_norm", "loss/value", "policy/clipfrac", "value/mean")
    check_golden("ppo", step_series(log_history[-1], figures), config=flags_dict(argv))


def test_a_missing_reference_fails_and_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setattr(golden, "REFERENCES", tmp_path)
    monkeypatch.delenv(golden.UPDATE_ENV, raising=False)
    with pytest.raises(pytest.fail.Exception, match="no golden reference"):
        check_golden("absent", {"loss": [1.0]}, config={})
    assert not (tmp_path / "absent.json").exists()


def test_update_writes_and_a_moved_value_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(golden, "REFERENCES", tmp_path)
    monkeypatch.setenv(golden.UPDATE_ENV, "1")
    check_golden("toy", {"loss": [1.0, 0.5]}, config={"beta": "0.1"})
    record = json.loads((tmp_path / "toy.json").read_text())
    assert record["values"] == {"loss": [1.0, 0.5]} and {"torch", "transformers", "trl"} <= set(record["versions"])
    monkeypatch.delenv(golden.UPDATE_ENV)
    check_golden("toy", {"loss": [1.0 + 1e-7, 0.5]}, config={})  # rounding noise passes
    with pytest.raises(pytest.fail.Exception, match=r"loss step 2: expected 0\.5, got 0\.51"):
        check_golden("toy", {"loss": [1.0, 0.51]}, config={})
    with pytest.raises(pytest.fail.Exception, match="grad_norm"):
        check_golden("toy", {"loss": [1.0, 0.5], "grad_norm": [1.0, 1.0]}, config={})
