"""The reward stage's test helpers: parsed arguments of a tiny training run, and `HandScorer`, the reference the
reported rewards are checked against (plain transformers, one conversation per forward pass, no batching, padding or
sorting).
"""

import math
from collections import defaultdict

import numpy as np

from plumb.config import parse_config


def reward_train_args(output_dir, model_dir, *flags):
    """Parsed `plumb reward train` arguments for a 2-step run on a tiny model, with `flags` appended."""
    from reward.train import config_types

    return parse_config(
        config_types(),
        [
            "--model_name_or_path",
            str(model_dir),
            "--output_dir",
            str(output_dir),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--per_device_eval_batch_size",
            "16",
            "--max_length",
            "64",
            "--learning_rate",
            "1e-2",
            "--report_to",
            "none",
            "--save_strategy",
            "no",
            "--logging_steps",
            "1",
            "--seed",
            "0",
            "--bootstrap_samples",
            "200",
            *flags,
        ],
    )


class HandScorer:
    """Rewards worked out one conversation at a time with plain transformers, as a reference for Plumb's figures.

    The input is the tokenizer's chat template; a conversation longer than `max_length` keeps its
    leading [CLS] and its last `max_length - 1` tokens (what the reward stage promises to do).
    """

    def __init__(self, model_dir, tokenizer_dir=None, *, max_length: int | None = None):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or model_dir)
        self.max_length = max_length

    def __call__(self, conversation: list[dict]) -> float:
        import torch

        ids = list(self.tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True)["input_ids"])
        if self.max_length is not None and len(ids) > self.max_length:
            ids = ids[:1] + ids[len(ids) - (self.max_length - 1) :]
        with torch.no_grad():
            return self.model(input_ids=torch.tensor([ids])).logits[0, 0].item()

    def pairs(self, rows) -> tuple[np.ndarray, np.ndarray]:
        """(reward of prompt + chosen, reward of prompt + rejected) of each pairwise row, each (n,)."""
        chosen = np.array([self(row["prompt"] + row["chosen"]) for row in rows])
        rejected = np.array([self(row["prompt"] + row["rejected"]) for row in rows])
        return chosen, rejected


def ece_by_hand(chosen, rejected, num_bins: int) -> float:
    """Expected calibration error by a loop over pairs: confidence max(p, 1-p) binned on [0.5, 1], last bin closed."""
    width = 0.5 / num_bins
    bins = defaultdict(list)
    for c, r in zip(chosen, rejected):
        p = 1 / (1 + math.exp(-(c - r)))
        confidence = max(p, 1 - p)
        right = 1.0 if p > 0.5 else 0.5 if p == 0.5 else 0.0
        bins[min(int((confidence - 0.5) / width), num_bins - 1)].append((confidence, right))
    n = len(chosen)
    return sum(
        len(members) / n * abs(np.mean([a for _, a in members]) - np.mean([c for c, _ in members]))
        for members in bins.values()
    )
