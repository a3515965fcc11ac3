"""`plumb reward VERB`: the verbs of the reward-model stage."""

from plumb.cli import run_verbs

VERBS = {
    "train": ("reward.train", "train a reward model on pairwise preferences or rankings (TRL RewardTrainer)"),
    "eval": (
        "reward.evaluate",
        "held-out accuracy with its interval, calibration, length bias (--eval_sets: several sets in one table); "
        "a gate for pipelines",
    ),
    "cv": (
        "reward.crossval",
        "K-fold cross-validation by prompt of a training recipe (the train keys and --kfold K; also eval --kfold)",
    ),
    "score": ("reward.score", "score a dataset's responses in batches (an ensemble gives mean and spread)"),
    "push": ("reward.push", "push a reward model to the Hub with a generated model card"),
}


def main(argv: list[str], *, prog: str = "plumb reward") -> int:
    """Dispatch to a verb of the reward stage."""
    return run_verbs(VERBS, argv, prog=prog, description=__doc__)
