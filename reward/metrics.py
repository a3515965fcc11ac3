"""The numbers a reward model is judged by, as small pure functions on arrays.

Shapes: `n` is the number of preference pairs. A pair counts as correct when the reward
of the chosen response is higher; an exact tie counts half, for the model and for the
length baseline alike, so neither gains from ties.
"""

import numpy as np

from plumb.stats import bootstrap_ci as bootstrap_ci  # the mean's interval, shared with sft and align

AGREEMENT_LEVELS = ((0.0, 0.6, "<0.6"), (0.6, 0.8, "0.6-0.8"), (0.8, 1.0, "0.8-<1"), (1.0, 1.01, "1 (unanimous)"))


def pair_correct(chosen_scores, rejected_scores) -> np.ndarray:
    """Per-pair correctness, shape (n,): 1 if chosen > rejected, 0.5 on a tie, else 0."""
    chosen, rejected = np.asarray(chosen_scores, float), np.asarray(rejected_scores, float)
    return np.where(chosen > rejected, 1.0, np.where(chosen == rejected, 0.5, 0.0))


def preference_probability(chosen_scores, rejected_scores) -> np.ndarray:
    """Bradley-Terry probability that chosen is preferred, sigmoid(r_chosen - r_rejected), shape (n,)."""
    difference = np.asarray(chosen_scores, float) - np.asarray(rejected_scores, float)
    return 1.0 / (1.0 + np.exp(-difference))


def reliability_bins(probabilities, *, num_bins: int = 10) -> list[dict]:
    """Top-label calibration bins over confidence max(p, 1-p) in [0.5, 1]: count, mean confidence, accuracy.

    `probabilities` (n,) are P(chosen preferred); the model predicts chosen when p > 0.5,
    and that prediction is right when it picked chosen (a tie at p = 0.5 is half right).
    """
    p = np.asarray(probabilities, float)
    confidence = np.maximum(p, 1.0 - p)
    correct = np.where(p > 0.5, 1.0, np.where(p == 0.5, 0.5, 0.0))
    edges = np.linspace(0.5, 1.0, num_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, num_bins - 1)
    bins = []
    for b in range(num_bins):
        members = index == b
        count = int(members.sum())
        bins.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": count,
                "confidence": float(confidence[members].mean()) if count else None,
                "accuracy": float(correct[members].mean()) if count else None,
            }
        )
    return bins


def expected_calibration_error(probabilities, *, num_bins: int = 10) -> float:
    """ECE: sum over bins of (bin share) * |accuracy - mean confidence| (see `reliability_bins`)."""
    bins = reliability_bins(probabilities, num_bins=num_bins)
    total = sum(b["count"] for b in bins)
    if not total:
        return float("nan")
    return float(sum(b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]))


def longer_is_better_accuracy(chosen_lengths, rejected_lengths) -> float:
    """Accuracy of the baseline that always prefers the longer response (ties count half)."""
    correct = pair_correct(chosen_lengths, rejected_lengths)
    return float(correct.mean()) if correct.size else float("nan")


def average_ranks(values) -> np.ndarray:
    """Ranks 1..n of `values` (n,), tied values sharing the mean of their ranks."""
    values = np.asarray(values, float)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(1, values.size + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def pearson(x, y) -> float:
    """Pearson correlation of two arrays (n,); NaN when either is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    dx, dy = x - x.mean(), y - y.mean()
    denominator = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denominator) if denominator > 0 else float("nan")


def spearman(x, y) -> float:
    """Spearman rank correlation: Pearson on average ranks (how much reward rises with length)."""
    return pearson(average_ranks(x), average_ranks(y))


def agreement_level(agreement: float) -> str:
    """The label of the raters'-agreement bucket a pair falls in (share of raters who agree with its label)."""
    for low, high, label in AGREEMENT_LEVELS:
        if low <= agreement < high:
            return label
    raise ValueError(f"agreement must be a share between 0 and 1, got {agreement}")


def grouped_accuracy(correct, groups) -> dict[str, dict]:
    """Accuracy and pair count per group label, groups sorted by name; `correct` and `groups` are (n,)."""
    correct = np.asarray(correct, float)
    table = {}
    for label in sorted(set(groups)):
        members = np.array([g == label for g in groups])
        table[str(label)] = {"pairs": int(members.sum()), "accuracy": float(correct[members].mean())}
    return table


def sample_sd(values) -> float:
    """Sample standard deviation (n - 1 in the denominator) of `values` (n,); NaN for fewer than two."""
    values = np.asarray(values, float)
    return float(values.std(ddof=1)) if values.size > 1 else float("nan")


def t_interval(values, *, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of `values` (n,): mean -/+ t(n-1) * sd / sqrt(n); NaN for fewer than two.

    Across cross-validation folds it is optimistic: the folds share training data, so their scores are
    correlated and no unbiased estimate of that variance exists (Bengio & Grandvalet, 2004).
    """
    from scipy import stats

    values = np.asarray(values, float)
    if values.size < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, df=values.size - 1) * sample_sd(values) / np.sqrt(values.size)
    return float(values.mean() - half), float(values.mean() + half)
