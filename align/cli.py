"""`plumb align VERB`: the verbs of the alignment stage."""

from plumb.cli import run_verbs

VERBS = {
    "dpo": (
        "align.dpo",
        "direct preference optimisation from an SFT checkpoint (TRL DPOTrainer; IPO, hinge, APO... by loss_type)",
    ),
    "kto": ("align.kto", "Kahneman-Tversky optimisation on unpaired judgments, the kto export (TRL KTOTrainer)"),
    "best-of-n": (
        "align.best_of_n",
        "sample n responses per prompt, keep the reward model's best (baseline, rejection-sampling SFT data)",
    ),
    "ppo": ("align.ppo", "PPO against reward models: a critic, GAE, clipped policy and value losses, with guards"),
    "online": (
        "align.online",
        "online RL against reward models, --algorithm ppo (default), rloo or grpo (TRL's trainers), with guards",
    ),
    "eval": (
        "align.evaluate",
        "policy vs reference on held-out prompts: judge win rate, rewards, KL, lengths, samples",
    ),
}


def main(argv: list[str], *, prog: str = "plumb align") -> int:
    """Dispatch to a verb of the alignment stage."""
    return run_verbs(VERBS, argv, prog=prog, description=__doc__)
