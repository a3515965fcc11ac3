"""Listwise reward training: the Plackett-Luce loss over a whole ranking, on TRL's RewardTrainer.

A ranking of K completions is one training example: all K are scored and the loss is the
negative log-likelihood of the ranked order under Plackett-Luce, where the best completion
is picked first from all K with probability softmax(rewards), the next from those left,
and so on:

    NLL = sum over completions i of  logsumexp(r_j for j still unplaced when i is picked) - r_i

Ties (Breslow): completions that share a rank are picked "at once", each from the same set,
the tied group and everything ranked below it; so tied completions share each other's
denominators. A tie at the bottom still adds a term (smallest when the tied rewards are
equal), while a single last completion adds exactly zero. For K = 2 without a tie the NLL is
-log sigmoid(r_better - r_worse): Bradley-Terry, so a pairwise row is a ranking of two.

A batch is a few rankings of different sizes; the collator pads all their completions into
one tensor and passes the group sizes and ranks along. Evaluation batches are pairs (the
held-out rankings expanded), which go through TRL's own collator and loss unchanged.
"""

from dataclasses import dataclass

import torch
from transformers.data.data_collator import DataCollatorMixin
from trl import RewardTrainer
from trl.trainer.reward_trainer import DataCollatorForPreference
from trl.trainer.utils import pad

from reward.encoding import encode_conversation


def plackett_luce_nll(scores, ranks, mask=None):
    """Negative Plackett-Luce log-likelihood of each ranking (B,) from padded scores and ranks (B, K), 1 = best.

    `mask` (B, K) marks the real completions (default: all); tied ranks share their denominators (Breslow).
    """
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    count = scores.shape[-1]
    # at_risk[b, i, j]: completion j is still unplaced when completion i's rank is picked (ties included)
    at_risk = (ranks.unsqueeze(-2) >= ranks.unsqueeze(-1)) & mask.unsqueeze(-2) & mask.unsqueeze(-1)
    # each row keeps itself, so a padded row's logsumexp is finite and its (masked) gradient is not NaN
    at_risk = at_risk | torch.eye(count, dtype=torch.bool, device=scores.device)
    scores = scores.masked_fill(~mask, 0.0)
    candidates = scores.unsqueeze(-2).expand(*scores.shape[:-1], count, count).masked_fill(~at_risk, float("-inf"))
    terms = torch.logsumexp(candidates, dim=-1) - scores
    return torch.where(mask, terms, torch.zeros_like(terms)).sum(-1)


def ordered_pairs(ranks, mask):
    """(B, K, K) bool: completion i is ranked above completion j (both real); the pairs pairwise training sees."""
    valid = mask.unsqueeze(-1) & mask.unsqueeze(-2)
    return (ranks.unsqueeze(-1) < ranks.unsqueeze(-2)) & valid


# Data


def ranking_to_conversational(dataset):
    """Rankings with plain-text prompt or completions turned into message lists (user prompt, assistant replies)."""

    def convert(row):
        prompt = row["prompt"]
        completions = [[{"role": "assistant", "content": c}] if isinstance(c, str) else c for c in row["completions"]]
        prompt = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        return {"prompt": prompt, "completions": completions}

    return dataset.map(convert)


def pairs_to_rankings(dataset):
    """Pairwise rows as rankings of two (chosen rank 1, rejected rank 2); `margin` has no place in the PL loss."""
    import datasets

    rows = [
        {"prompt": row["prompt"], "completions": [row["chosen"], row["rejected"]], "ranks": [1, 2]} for row in dataset
    ]
    return datasets.Dataset.from_list(rows)


@dataclass
class RankingTruncation:
    """How many completions (prompt + reply) lost tokens to `max_length`, and how many lost part of the reply."""

    rankings: int = 0
    completions: int = 0
    truncated_completions: int = 0
    responses_cut: int = 0

    def as_metrics(self) -> dict:
        """The counts as flat metrics for metrics.json and the card."""
        return {
            "rankings": self.rankings,
            "completions": self.completions,
            "truncated_completions": self.truncated_completions,
            "truncated_share": self.truncated_completions / self.completions if self.completions else 0.0,
            "responses_cut_by_truncation": self.responses_cut,
        }


def tokenize_rankings(dataset, tokenizer, max_length: int | None):
    """(dataset with completion_ids, ranks and length per ranking, RankingTruncation); cut as pairs are cut."""
    import datasets

    count = RankingTruncation()
    rows = []
    for row in dataset:
        ids = []
        for completion in row["completions"]:
            encoded, cut = encode_conversation(tokenizer, row["prompt"] + completion, max_length)
            ids.append(encoded)
            count.truncated_completions += cut
            if cut and len(encode_conversation(tokenizer, completion, None)[0]) > max_length:
                count.responses_cut += 1
        count.rankings += 1
        count.completions += len(ids)
        # `length` drives group_by_length: the longest completion sets the padded width of the batch
        rows.append({"completion_ids": ids, "ranks": list(row["ranks"]), "length": max(map(len, ids))})
    return datasets.Dataset.from_list(rows), count


@dataclass
class RankingCollator(DataCollatorMixin):
    """Pads every completion of a batch of rankings into one tensor, with `group_sizes` and the flat `ranks`.

    Pair batches (the held-out pairs) go to TRL's DataCollatorForPreference unchanged.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    return_tensors: str = "pt"

    def torch_call(self, examples: list[dict]) -> dict:
        """One batch: rankings flattened and right-padded, or pairs as TRL pads them."""
        if "completion_ids" not in examples[0]:
            return DataCollatorForPreference(self.pad_token_id, self.pad_to_multiple_of)(examples)
        input_ids = [torch.tensor(ids) for example in examples for ids in example["completion_ids"]]
        return {
            "input_ids": pad(
                input_ids,
                padding_value=self.pad_token_id,
                padding_side="right",
                pad_to_multiple_of=self.pad_to_multiple_of,
            ),
            "attention_mask": pad(
                [torch.ones_like(ids) for ids in input_ids],
                padding_value=0,
                padding_side="right",
                pad_to_multiple_of=self.pad_to_multiple_of,
            ),
            "group_sizes": torch.tensor([len(example["completion_ids"]) for example in examples]),
            "ranks": torch.tensor([rank for example in examples for rank in example["ranks"]]),
        }


def regroup(flat, group_sizes):
    """Flat per-completion values (N,) as a padded (B, K) tensor and its mask, one row per ranking."""
    sizes = group_sizes.tolist()
    rows = torch.split(flat, sizes)
    padded = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
    mask = torch.arange(padded.shape[1], device=flat.device).unsqueeze(0) < group_sizes.unsqueeze(1)
    return padded, mask


class PlackettLuceTrainer(RewardTrainer):
    """TRL's RewardTrainer with rankings as training examples and the Plackett-Luce loss; pairs evaluate as in TRL.

    Logging, saving, evaluation and checkpoints are TRL's; the logged accuracy and margin are over
    each ranking's ordered pairs, so they read as TRL's pairwise ones.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # the pad token is settled in RewardTrainer.__init__ (the tokenizer's, else its eos)
        self.data_collator = RankingCollator(self.processing_class.pad_token_id, self.args.pad_to_multiple_of)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        # Rankings come tokenized by Plumb (cut from the left, never dropped); pairs go through TRL's checks.
        if "completion_ids" in (getattr(dataset, "column_names", None) or ()):
            return dataset
        return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Mean Plackett-Luce NLL over the batch's rankings (plus TRL's centering term); pair batches as in TRL."""
        if "group_sizes" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        group_sizes, flat_ranks = inputs.pop("group_sizes"), inputs.pop("ranks")
        inputs["use_cache"] = False
        outputs = model(**inputs)
        scores, mask = regroup(outputs.logits.squeeze(-1), group_sizes)
        ranks, _ = regroup(flat_ranks, group_sizes)
        loss = plackett_luce_nll(scores, ranks, mask).mean()
        if self.args.center_rewards_coefficient is not None:
            # TRL's (r_chosen + r_rejected)^2 for a pair; for K completions, (2 * their mean reward)^2
            mean_reward = scores.sum(-1) / group_sizes
            loss = loss + self.args.center_rewards_coefficient * torch.mean((2 * mean_reward) ** 2)
        self._log_batch(mode, inputs["attention_mask"], outputs.logits, scores, ranks, mask)
        return (loss, outputs) if return_outputs else loss

    def _log_batch(self, mode, attention_mask, logits, scores, ranks, mask):
        # the metrics RewardTrainer logs, with accuracy and margin over the rankings' ordered pairs
        if mode == "train":
            tokens = self.accelerator.gather_for_metrics(attention_mask.sum()).sum().item()
            self._total_train_tokens += tokens // self._tp_size
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        with torch.no_grad():
            all_rewards = self.accelerator.gather(logits)
            self._metrics[mode]["min_reward"].append(all_rewards.min().item())
            self._metrics[mode]["mean_reward"].append(all_rewards.mean().item())
            self._metrics[mode]["max_reward"].append(all_rewards.max().item())
            better = ordered_pairs(ranks, mask)
            if better.any():
                difference = (scores.unsqueeze(-1) - scores.unsqueeze(-2))[better]
                accuracy = self.accelerator.gather_for_metrics((difference > 0).float().mean()).mean()
                margin = self.accelerator.gather_for_metrics(difference.mean()).mean()
                self._metrics[mode]["accuracy"].append(accuracy.item())
                self._metrics[mode]["margin"].append(margin.item())
