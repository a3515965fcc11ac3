"""Over-optimisation guards for online RL: stop before the policy games the reward model.

KL to the reference, mean completion length, entropy, and (with a reward-model ensemble)
the ensemble's disagreement on the policy's samples are checked at every log; crossing
a limit stops the run, and the newest checkpoint whose policy was measured within every
limit becomes the result.

The figures logged at step s are measured on the samples of step s, drawn from the policy
as it was before step s's update: the weights saved as checkpoint-(s-1). So when the last
figures within the limits were logged at step g, the checkpoints measured good are those up
to step g-1, and checkpoint-g (whose samples, at step g+1, crossed a limit) is not one of them.
"""

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from transformers import TrainerCallback

from align.rewards import DISAGREEMENT

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Guard limits; None switches a check off."""

    max_kl: float | None = None
    max_mean_length: float | None = None
    min_entropy: float | None = None
    max_reward_disagreement: float | None = None


def violations(logs: dict, limits: Limits) -> list[str]:
    """Why the logged figures cross the limits (empty when they do not, or were not logged)."""
    checks = [
        ("kl", limits.max_kl, lambda v, lim: v > lim, "KL to the reference {v:.4g} > max_kl {lim}"),
        (
            "completions/mean_length",
            limits.max_mean_length,
            lambda v, lim: v > lim,
            "mean completion length {v:.4g} tokens > max_mean_length {lim}",
        ),
        ("entropy", limits.min_entropy, lambda v, lim: v < lim, "entropy {v:.4g} < min_entropy {lim}"),
        (
            DISAGREEMENT,
            limits.max_reward_disagreement,
            lambda v, lim: v > lim,
            "reward-model ensemble disagreement {v:.4g} > max_reward_disagreement {lim}",
        ),
    ]
    return [
        message.format(v=logs[key], lim=limit)
        for key, limit, crossed, message in checks
        if limit is not None and key in logs and crossed(logs[key], limit)
    ]


class GuardCallback(TrainerCallback):
    """Stops training when a logged figure crosses its limit; remembers the last step where all were within
    (`last_good_step`: the figures of that step describe checkpoint-(last_good_step - 1))."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.last_good_step = 0
        self.tripped: dict | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Check the figures TRL just logged."""
        if self.tripped is not None:  # stopped: a later log (the end-of-training summary) makes no step good
            return control
        problems = violations(logs or {}, self.limits)
        if not problems:
            self.last_good_step = state.global_step
        else:
            self.tripped = {"step": state.global_step, "reasons": problems, "last_good_step": self.last_good_step}
            logger.warning("Over-optimisation guard at step %d: %s. Stopping.", state.global_step, "; ".join(problems))
            control.should_training_stop = True
        return control


def last_good_checkpoint(output_dir: Path, last_good_step: int) -> Path | None:
    """The newest `checkpoint-N` folder with N < last_good_step (its policy sampled a step logged within the limits),
    or None."""
    steps = [(int(p.name.split("-")[1]), p) for p in output_dir.glob("checkpoint-*") if p.name.split("-")[1].isdigit()]
    good = [(step, path) for step, path in steps if step < last_good_step]
    return max(good)[1] if good else None


def keep_last_good(output_dir: Path, guard: GuardCallback) -> Path | None:
    """After a tripped guard: copy the last good checkpoint's model into `output_dir/last_good`, write guard.json."""
    checkpoint = last_good_checkpoint(output_dir, guard.last_good_step)
    report = {**guard.tripped, "kept": str(checkpoint) if checkpoint else None}
    (output_dir / "guard.json").write_text(json.dumps(report, indent=2))
    if checkpoint is None:
        logger.warning("No checkpoint was measured within the limits: the starting policy stands.")
        return None
    target = output_dir / "last_good"
    shutil.copytree(
        checkpoint,
        target,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("optimizer.pt", "scheduler.pt", "rng_state*", "trainer_state.json"),
    )
    logger.warning(
        "Kept %s (measured within the limits at step %d) as %s", checkpoint.name, guard.last_good_step, target
    )
    return target
