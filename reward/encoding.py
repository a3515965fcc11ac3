"""Turn preference pairs into reward-model input ids, keeping the end of long conversations.

TRL's RewardTrainer drops every pair longer than `max_length`, and cutting from the right
would be worse: in multi-turn pairs chosen and rejected differ only in the last assistant
turn. So Plumb tokenizes itself, cuts from the left (the oldest turns go first), keeps the
leading special token ([CLS] for encoders, whose head reads it) and counts what it cut.
"""

import logging
from dataclasses import dataclass

from plumb.data import load_contract, to_conversational

logger = logging.getLogger(__name__)

RESPONSE_COLUMNS = ("chosen", "rejected")


@dataclass
class TruncationCount:
    """How many pairs lost tokens to `max_length`, and how many lost part of a response (not just the prompt)."""

    pairs: int = 0
    truncated_pairs: int = 0
    responses_cut: int = 0
    identical_after_truncation: int = 0

    def as_metrics(self) -> dict:
        """The counts as flat metrics for metrics.json and the card."""
        return {
            "pairs": self.pairs,
            "truncated_pairs": self.truncated_pairs,
            "truncated_share": self.truncated_pairs / self.pairs if self.pairs else 0.0,
            "responses_cut_by_truncation": self.responses_cut,
            "pairs_identical_after_truncation": self.identical_after_truncation,
        }


def encode_conversation(tokenizer, messages: list[dict], max_length: int | None) -> tuple[list[int], bool]:
    """Token ids of a conversation for a reward model, and whether it was cut; keeps leading specials and the end."""
    ids = tokenizer(tokenizer.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
    if max_length is None or len(ids) <= max_length:
        return ids, False
    special = set(tokenizer.all_special_ids)
    head = 0
    while head < len(ids) and head < 2 and ids[head] in special:
        head += 1
    return ids[:head] + ids[len(ids) - (max_length - head) :], True


def response_text(messages) -> str:
    """The text of a response: the content of its messages (or the string itself in TRL's standard form)."""
    if isinstance(messages, str):
        return messages
    return "\n".join(message["content"] for message in messages)


def load_pairs(source: str, split: str):
    """Load a pairwise split (conversational or standard form), check it, and return it as message lists."""
    return to_conversational(load_contract(source, "pairwise", split))


def tokenize_pairs(dataset, tokenizer, max_length: int | None, *, use_margin: bool = True):
    """(tokenized dataset with chosen_ids, rejected_ids, length and maybe margin, TruncationCount)."""
    import datasets

    count = TruncationCount()
    rows = []
    has_margin = use_margin and "margin" in dataset.column_names
    for row in dataset:
        chosen, chosen_cut = encode_conversation(tokenizer, row["prompt"] + row["chosen"], max_length)
        rejected, rejected_cut = encode_conversation(tokenizer, row["prompt"] + row["rejected"], max_length)
        count.pairs += 1
        count.truncated_pairs += chosen_cut or rejected_cut
        count.identical_after_truncation += chosen == rejected
        if max_length is not None:
            count.responses_cut += sum(
                len(encode_conversation(tokenizer, response, None)[0]) > max_length
                for response, cut in ((row["chosen"], chosen_cut), (row["rejected"], rejected_cut))
                if cut
            )
        tokenized = {"chosen_ids": chosen, "rejected_ids": rejected, "length": max(len(chosen), len(rejected))}
        if has_margin:
            tokenized["margin"] = float(row["margin"] or 0.0)
        rows.append(tokenized)
    return datasets.Dataset.from_list(rows), count


def log_truncation(count: TruncationCount, *, name: str, max_length: int | None) -> None:
    """Say how many pairs were cut to max_length (from the left), so a user can raise it if too many were."""
    if count.truncated_pairs:
        logger.info(
            "%s: %d of %d pairs (%.0f%%) were longer than max_length=%s and lost their oldest tokens; "
            "%d responses were themselves longer than that.",
            name,
            count.truncated_pairs,
            count.pairs,
            100 * count.truncated_pairs / count.pairs,
            max_length,
            count.responses_cut,
        )
    if count.identical_after_truncation:
        logger.warning(
            "%s: %d pairs are identical after truncation and teach nothing.", name, count.identical_after_truncation
        )
