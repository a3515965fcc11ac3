"""Turn several raters' judgments of one task into one decision: majority for pairs, mean rank for rankings.

Pure functions on plain values, so every rule can be checked by hand. A decision is a
ranking of the task's candidates (1 = best, ties share a rank), which the export turns
into pairs, rankings, KTO labels or SFT targets.
"""

from collections import Counter
from dataclasses import dataclass

from collect.domain.answers import BOTH_BAD, pairwise_verdict

SPLIT_RULES = ("drop", "strength")


@dataclass(frozen=True)
class Outcome:
    """One task's decision: `ranks` per canonical candidate, or None with the `reason` it was left out."""

    ranks: list[int] | None
    margin: float | None = None
    both_bad: bool = False
    reason: str | None = None


def agreement(labels: list) -> float:
    """Share of votes that equal the most common vote (1.0 when everyone agrees); votes: [n]."""
    if not labels:
        return 0.0
    return Counter(labels).most_common(1)[0][1] / len(labels)


def aggregate_pairwise(votes: list[tuple[int | None, bool]], *, on_split: str = "drop") -> Outcome:
    """Majority of (preference -3..3, both_bad) votes; the margin is the mean strength of the winning side.

    A split vote (two answers equally common) is left out (`on_split="drop"`) or decided by
    the sign of the summed preferences (`"strength"`), "both bad" votes counting as 0.
    """
    labels = [pairwise_verdict(preference, both_bad) for preference, both_bad in votes]
    counts = Counter(labels).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        if on_split != "strength":
            return Outcome(None, reason="split vote")
        total = sum(preference or 0 for preference, both_bad in votes if not both_bad)
        if total == 0:
            return Outcome(None, reason="split vote")
        winner = 1 if total > 0 else -1
    else:
        winner = counts[0][0]
    if winner == BOTH_BAD:
        return Outcome(None, both_bad=True, reason="both bad")
    if winner == 0:
        return Outcome([1, 1], reason=None)
    strengths = [abs(preference) for (preference, _), label in zip(votes, labels) if label == winner]
    return Outcome([1, 2] if winner > 0 else [2, 1], margin=sum(strengths) / len(strengths))


def dense_ranks(scores: list[float]) -> list[int]:
    """Ranks from scores, lower score = better: equal scores share a rank, the next rank follows (1, 1, 2)."""
    order = sorted(set(scores))
    return [order.index(score) + 1 for score in scores]


def aggregate_ranks(rankings: list[list[int]]) -> Outcome:
    """Mean rank of each candidate over raters, re-ranked densely; rankings: [raters][K] (1 = best)."""
    size = len(rankings[0])
    means = [sum(ranking[k] for ranking in rankings) / len(rankings) for k in range(size)]
    return Outcome(dense_ranks(means))


def aggregate_ratings(ratings: list[list[int]]) -> Outcome:
    """Mean Likert rating of each candidate over raters, as ranks (higher rating = better); ratings: [raters][K]."""
    size = len(ratings[0])
    means = [sum(row[k] for row in ratings) / len(ratings) for k in range(size)]
    return Outcome(dense_ranks([-mean for mean in means]))
