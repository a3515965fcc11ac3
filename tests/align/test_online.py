"""`plumb align online`: the verb that picks the algorithm, what every online run shares (the guards' decisions on
hand-made histories, the reward of each completion), and RLOO/GRPO runs on tiny models whose reported figures and
kept checkpoint are checked against the run's own log and checkpoints. PPO's own tests: test_ppo*.py."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerControl, TrainerState

from align.guards import GuardCallback, Limits, keep_last_good, last_good_checkpoint, violations
from align.rewards import DISAGREEMENT, UNFINISHED, RewardModels, penalize_unfinished
from align.rloo_grpo import config_types, main
from plumb.config import parse_config
from tests.support.worked import score_alone


def test_violations_name_what_crossed_which_limit():
    logs = {"kl": 0.8, "completions/mean_length": 50.0, "entropy": 0.01, "reward_ensemble_std": 0.3}
    assert violations(logs, Limits()) == []
    assert violations(logs, Limits(max_kl=0.5, max_mean_length=60, min_entropy=0.1, max_reward_disagreement=0.2)) == [
        "KL to the reference 0.8 > max_kl 0.5",
        "entropy 0.01 < min_entropy 0.1",
        "reward-model ensemble disagreement 0.3 > max_reward_disagreement 0.2",
    ]
    assert violations(logs, Limits(max_mean_length=49.5)) == ["mean completion length 50 tokens > max_mean_length 49.5"]
    # On the limit is within it
    assert violations(logs, Limits(max_kl=0.8, max_mean_length=50, min_entropy=0.01, max_reward_disagreement=0.3)) == []
    assert violations({"loss": 1.0}, Limits(max_kl=0.1)) == []  # not logged: nothing to judge


def test_guard_trips_at_the_first_step_over_a_limit_and_keeps_the_step_before():
    guard = GuardCallback(Limits(max_kl=0.1, min_entropy=0.5))
    state, control = TrainerState(), TrainerControl()
    history = [
        (1, {"kl": 0.01, "entropy": 2.0}),
        (2, {"kl": 0.05, "entropy": 1.0}),
        (3, {"kl": 0.1, "entropy": 0.5}),  # on both limits: still good
        (4, {"kl": 0.3, "entropy": 0.4}),  # over both: the guard trips here
        (4, {"train_runtime": 1.0, "train_loss": 0.2}),  # the trainer's end-of-training summary, no figures
        (5, {"kl": 0.01, "entropy": 2.0}),  # anything logged after the trip changes nothing
        (6, {"kl": 0.9, "entropy": 2.0}),
    ]
    stops = []
    for step, logs in history:
        state.global_step = step
        guard.on_log(None, state, control, logs=logs)
        stops.append(control.should_training_stop)
    assert stops == [False, False, False, True, True, True, True]
    assert guard.tripped == {
        "step": 4,
        "reasons": ["KL to the reference 0.3 > max_kl 0.1", "entropy 0.4 < min_entropy 0.5"],
        "last_good_step": 3,
    }
    assert guard.last_good_step == 3


def test_guard_that_never_trips_follows_the_last_step():
    guard = GuardCallback(Limits(max_mean_length=10))
    state, control = TrainerState(), TrainerControl()
    for step, length in enumerate([3.0, 9.0, 10.0], start=1):
        state.global_step = step
        guard.on_log(None, state, control, logs={"completions/mean_length": length})
    assert guard.tripped is None and guard.last_good_step == 3 and not control.should_training_stop


def test_last_good_checkpoint_is_the_newest_before_the_good_step(tmp_path):
    # The figures of step s were measured on the samples of the policy before step s's update: checkpoint-(s-1).
    for step in (2, 4, 6, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-last").mkdir()
    assert last_good_checkpoint(tmp_path, 5).name == "checkpoint-4"
    assert last_good_checkpoint(tmp_path, 7).name == "checkpoint-6"
    assert last_good_checkpoint(tmp_path, 6).name == "checkpoint-4"  # checkpoint-6 sampled step 7, not measured good
    assert last_good_checkpoint(tmp_path, 12).name == "checkpoint-10"  # by number, not by name (10 > 6)
    assert last_good_checkpoint(tmp_path, 2) is None


def test_keep_last_good_copies_that_checkpoints_model_only(tmp_path):
    for step in (2, 4):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(bytes([step]) * 64)
        (folder / "config.json").write_text(json.dumps({"step": step}))
        for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"):
            (folder / name).write_text("state")
    guard = GuardCallback(Limits(max_kl=0.1))
    guard.last_good_step, guard.tripped = 3, {"step": 4, "reasons": ["KL"], "last_good_step": 3}
    kept = keep_last_good(tmp_path, guard)
    assert kept == tmp_path / "last_good"
    assert sorted(p.name for p in kept.iterdir()) == ["config.json", "model.safetensors"]
    assert (kept / "model.safetensors").read_bytes() == (tmp_path / "checkpoint-2" / "model.safetensors").read_bytes()
    report = json.loads((tmp_path / "guard.json").read_text())
    assert report == {**guard.tripped, "kept": str(tmp_path / "checkpoint-2")}


def test_keep_last_good_keeps_nothing_when_no_checkpoint_came_before_the_trip(tmp_path):
    (tmp_path / "checkpoint-1").mkdir()
    (tmp_path / "checkpoint-1" / "model.safetensors").write_bytes(b"over-optimised")
    guard = GuardCallback(Limits(max_kl=0.1))
    guard.tripped = {"step": 1, "reasons": ["KL"], "last_good_step": 0}
    assert keep_last_good(tmp_path, guard) is None and not (tmp_path / "last_good").exists()
    assert json.loads((tmp_path / "guard.json").read_text())["kept"] is None


def test_unfinished_completions_are_penalised():
    rewards, share = penalize_unfinished([1.0, 1.0, 2.0], [[5, 2], [5, 7], []], stop_ids={2}, penalty=0.5)
    assert rewards.tolist() == [1.0, 0.5, 1.5] and share == pytest.approx(2 / 3)


def test_reward_function_scores_each_completion_as_if_alone(judge_dirs):
    from reward.score import load_reward_model

    prompts = ["Name a colour.", "Name a colour.", "Say hi.", "Count to three.", "Say hi."]
    texts = ["Blue.", "Red, I think, or maybe a deep shade of green.", "Hi!", "one two three", "Hello, how are you?"]
    completions = [[{"role": "assistant", "content": text}] for text in texts]  # TRL's conversational form
    completion_ids = [[5, 7], [5, 9], [], [7], [3, 3, 7]]  # 7 ends a completion: rows 1 and 2 never end
    logged = {}
    reward = RewardModels(",".join(judge_dirs), stop_ids={7}, unfinished_penalty=0.5, batch_size=2)
    rewards = reward(prompts, completions, completion_ids=completion_ids, log_metric=logged.__setitem__)

    judges = [load_reward_model(path) for path in judge_dirs]
    conversations = [[{"role": "user", "content": p}] + c for p, c in zip(prompts, completions)]
    scores = np.array([[score_alone(judge, conversation) for conversation in conversations] for judge in judges])
    assert np.ptp(scores.mean(axis=0)) > 0.1 and np.abs(scores[0] - scores[1]).min() > 1e-3
    unfinished = np.array([0, 1, 1, 0, 0])
    assert rewards == pytest.approx((scores.mean(axis=0) - 0.5 * unfinished).tolist(), abs=1e-5)
    # the spread of two models is half their distance, averaged over the completions
    assert logged[DISAGREEMENT] == pytest.approx(np.mean(np.abs(scores[0] - scores[1]) / 2), abs=1e-5)
    assert logged[UNFINISHED] == pytest.approx(2 / 5)

    # One model, plain strings (TRL's standard form), no token ids: the bare scores, no penalty, no spread logged
    logged.clear()
    single = RewardModels(judge_dirs[0], stop_ids={7}, unfinished_penalty=0.5, batch_size=3)
    assert single(prompts, texts, log_metric=logged.__setitem__) == pytest.approx(scores[0].tolist(), abs=1e-5)
    assert logged == {}


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


def weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


def same_weights(a: dict, b: dict) -> bool:
    assert a.keys() == b.keys(), "not the same model's tensors"
    return all(torch.equal(a[k], b[k]) for k in a)


def logged_steps(checkpoint: Path) -> list[dict]:
    """The training log entries (those with a reward) a checkpoint's trainer_state.json recorded."""
    return [e for e in json.loads((checkpoint / "trainer_state.json").read_text())["log_history"] if "reward" in e]


@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
def test_two_steps_report_what_the_run_logged(tmp_path, tiny_policy_dir, tiny_reward_dir, algorithm):
    out = tmp_path / "out"
    args = ppo_args(
        out, tiny_policy_dir, tiny_reward_dir, "--algorithm", algorithm, "--save_strategy", "steps", "--save_steps", "2"
    )
    assert type(args[1]).__name__ == ("GRPOConfig" if algorithm == "grpo" else "RLOOConfig")
    metrics = main(*args)
    history = logged_steps(out / "checkpoint-2")
    assert [e["step"] for e in history] == [1, 2]
    assert metrics["steps"] == 2 and not metrics["guard_tripped"]
    assert (metrics["first_reward"], metrics["last_reward"]) == (history[0]["reward"], history[1]["reward"])
    assert metrics["last_kl"] == history[1].get("kl")
    assert json.loads((out / "metrics.json").read_text()) == metrics
    # The result is the trained policy: the last checkpoint's weights, not the starting ones
    assert same_weights(weights(out), weights(out / "checkpoint-2"))
    assert not same_weights(weights(out), weights(Path(tiny_policy_dir)))


def test_guard_keeps_the_newest_checkpoint_measured_within_the_limit(tmp_path, tiny_policy_dir, tiny_reward_dir):
    # Step 1 samples from the reference itself (KL 0); the first update moves the policy, so a later step crosses
    # the limit. The figures of step s describe checkpoint-(s-1): a trip at step t keeps checkpoint-(t-2), if any.
    out = tmp_path / "out"
    args = ppo_args(
        out,
        tiny_policy_dir,
        tiny_reward_dir,
        "--max_steps",
        "4",
        "--max_kl",
        "1e-4",
        "--save_strategy",
        "steps",
        "--save_steps",
        "1",
    )
    metrics = main(*args)

    # Which step crosses the limit, worked out from the KL the run logged
    checkpoints = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    history = logged_steps(out / f"checkpoint-{checkpoints[-1]}")
    tripped = next(e for e in history if e["kl"] > 1e-4)
    trip, good = tripped["step"], tripped["step"] - 1
    assert history[0]["kl"] <= 1e-4 and good >= 1, "the guard should trip after at least one good step"
    assert checkpoints == list(range(1, trip + 1))  # stopped at the trip (whose checkpoint is saved, then ignored)

    assert metrics["guard_tripped"] and metrics["steps"] == trip
    assert metrics["guard_reasons"] == [f"KL to the reference {tripped['kl']:.4g} > max_kl 0.0001"]
    report = json.loads((out / "guard.json").read_text())
    assert (report["step"], report["last_good_step"]) == (trip, good)
    assert not (out / "model.safetensors").exists()  # the over-optimised policy is not the result
    if good == 1:  # only the starting policy was measured within the limit: nothing is kept
        assert report["kept"] is None and metrics["kept"] == "None" and not (out / "last_good").exists()
        return
    assert report["kept"] == str(out / f"checkpoint-{good - 1}") and metrics["kept"] == str(out / "last_good")
    kept = weights(out / "last_good")
    assert same_weights(kept, weights(out / f"checkpoint-{good - 1}"))
    assert not same_weights(kept, weights(out / f"checkpoint-{good}"))


def test_online_picks_the_dataclasses_by_algorithm_and_ppo_refuses_the_others():
    from trl import GRPOConfig, RLOOConfig

    from align import online, ppo
    from align.ppo_config import PPOConfig
    from plumb.config import ConfigError

    assert online.config_types([])[1] is PPOConfig  # ppo is the default
    assert online.config_types(["--algorithm", "ppo"])[1] is PPOConfig
    assert online.config_types(["--algorithm", "rloo"])[1] is RLOOConfig
    assert online.config_types(["--algorithm", "grpo"])[1] is GRPOConfig
    assert ppo.config_types([])[1] is PPOConfig
    with pytest.raises(ConfigError, match=r"`plumb align online --algorithm rloo`"):
        ppo.config_types(["--algorithm", "rloo"])
