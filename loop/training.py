"""The training stages of a round: the reward model (with its gate), then DPO or online RL.

Each writes the stage's own config file into its folder (the loop's section with the
round's data and models filled in) and runs the stage's `main` on it, exactly as
`plumb reward train --config` or `plumb align dpo --config` would.
"""

import logging

from loop.context import LoopRun, relative, stage_config

logger = logging.getLogger(__name__)


class GateStop(RuntimeError):
    """The reward model of a round fell short of the config's gate; the message says by how much and where."""


def sections(run: LoopRun) -> list[tuple[str, dict, tuple]]:
    """(section name, its keys, the stage's config dataclasses) of the training stages this config runs."""
    from align import dpo, online
    from reward import train

    found = [("reward", run.args.reward, train.config_types())]
    if run.args.algorithm == "dpo":
        return found + [("dpo", run.args.dpo, dpo.config_types())]
    argv = ["--algorithm", run.args.algorithm]
    return found + [("online", {**run.args.online, "algorithm": run.args.algorithm}, online.config_types(argv))]


# Reward


def reward(run: LoopRun, round_number: int) -> dict:
    """Train the round's reward model on its pairs (warm-started from the last round's); evaluate on held-out pairs."""
    from reward.train import config_types
    from reward.train import main as reward_main

    folder = run.stage_dir(round_number, "reward")
    pairs = run.result(round_number, "export")["pairs"]
    previous = run.reward_model(round_number - 1) if round_number > 1 and run.args.reward_warm_start else None
    values = {
        **run.args.reward,
        "dataset_name": pairs,
        "dataset_train_split": "train",
        "dataset_test_split": "test",
        "output_dir": str(folder / "model"),
        "seed": run.args.seed,
    }
    if previous:
        values["model_name_or_path"] = previous
    parsed = stage_config(
        config_types(),
        values,
        folder / "config.yaml",
        where=f"{run.config_path}: section 'reward' (round {round_number})",
    )
    metrics = reward_main(*parsed)
    return {
        "model": str(folder / "model"),
        "warm_start": previous,
        "accuracy": metrics.get("eval_accuracy"),
        "accuracy_ci95": metrics.get("eval_accuracy_ci95"),
        "ece": metrics.get("eval_ece"),
        "train_loss": metrics.get("train_loss"),
    }


def check_gate(run: LoopRun, round_number: int) -> None:
    """Stop the loop (GateStop) when the round's reward model is less accurate or worse calibrated than allowed."""
    result, args = run.result(round_number, "reward"), run.args
    where = relative(result["model"])
    accuracy, ece = result.get("accuracy"), result.get("ece")
    if args.min_accuracy is not None and (accuracy is None or accuracy < args.min_accuracy):
        raise GateStop(
            f"round {round_number}: the reward model's held-out accuracy {_shown(accuracy)} is below "
            f"min_accuracy {args.min_accuracy} ({where}/eval_report.json); the loop stops here: collect "
            "more or better labels, or change the gate, then rerun to continue"
        )
    if args.max_ece is not None and (ece is None or ece > args.max_ece):
        raise GateStop(
            f"round {round_number}: the reward model's calibration error {_shown(ece)} is above "
            f"max_ece {args.max_ece} ({where}/eval_report.json); the loop stops here"
        )


def _shown(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


# Align


def align(run: LoopRun, round_number: int) -> dict:
    """DPO on the round's pairs, or online RL against its reward model, from the current policy (SFT: reference)."""
    folder = run.stage_dir(round_number, "align")
    start = run.policy_at_start(round_number)
    common = {
        "model_name_or_path": start,
        "output_dir": str(folder / "policy"),
        "seed": run.args.seed,
        "merge_adapter": True,
    }
    if run.args.algorithm == "dpo":
        return _dpo(run, round_number, folder, common)
    return _online(run, round_number, folder, common)


def _dpo(run: LoopRun, round_number: int, folder, common: dict) -> dict:
    from align.dpo import config_types
    from align.dpo import main as dpo_main

    values = {
        **run.args.dpo,
        **common,
        "dataset_name": run.result(round_number, "export")["pairs"],
        "dataset_train_split": "train",
        "dataset_test_split": "test",
    }
    if round_number > 1:  # from the aligned policy on, the loss still measures the move away from SFT
        values["ref_model_name_or_path"] = run.args.sft_policy
    parsed = stage_config(
        config_types(), values, folder / "config.yaml", where=f"{run.config_path}: section 'dpo' (round {round_number})"
    )
    metrics = dpo_main(*parsed)
    return {
        "policy": common["output_dir"],
        "algorithm": "dpo",
        "train_loss": metrics.get("train_loss"),
        "implicit_accuracy": metrics.get("eval_rewards/accuracies"),
        "implicit_margin": metrics.get("eval_rewards/margins"),
    }


def _online(run: LoopRun, round_number: int, folder, common: dict) -> dict:
    from align.online import config_types
    from align.online import main as online_main

    values = {
        **run.args.online,
        **common,
        "algorithm": run.args.algorithm,
        "reward_model": run.reward_model(round_number),
        "dataset_name": run.result(round_number, "candidates")["prompts_file"],
        "dataset_train_split": "train",
    }
    argv = ["--algorithm", run.args.algorithm]
    parsed = stage_config(
        config_types(argv),
        values,
        folder / "config.yaml",
        where=f"{run.config_path}: section 'online' (round {round_number})",
    )
    metrics = online_main(*parsed)
    # A tripped guard keeps the last checkpoint saved within every limit: that is the round's policy.
    policy = metrics.get("kept") or common["output_dir"]
    return {
        "policy": policy,
        "algorithm": run.args.algorithm,
        "first_reward": metrics.get("first_reward"),
        "last_reward": metrics.get("last_reward"),
        "guard_reasons": metrics.get("guard_reasons"),
    }
