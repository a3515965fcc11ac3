"""`plumb sft VERB`: the verbs of the supervised fine-tuning stage."""

from plumb.cli import run_verbs

VERBS = {
    "train": ("sft.train", "fine-tune a policy on conversations, loss on assistant turns only (TRL SFTTrainer)"),
    "eval": ("sft.evaluate", "perplexity, ROUGE-L, BLEU and exact match against held-out reference answers"),
}


def main(argv: list[str], *, prog: str = "plumb sft") -> int:
    """Dispatch to a verb of the SFT stage."""
    return run_verbs(VERBS, argv, prog=prog, description=__doc__)
