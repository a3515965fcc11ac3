"""A reward model's pre-labels against the raters: how often the model agrees with the human consensus at each
confidence (so a team can pick the auto-label threshold from data), and whether raters who were shown its answer
chose it more often than raters who were not (anchoring).

Pure functions on arrays and `JudgmentTable`s. The consensus is the report's own (`report.quality_figures`), built
from people's judgments only: a model's auto-labels never vote on the answer they are checked against. Intervals
are Wilson 95% intervals (statsmodels' `proportion_confint`): they stay inside 0..1 and behave on small counts.
"""

import numpy as np

from collect.domain.quality.judgments import JudgmentTable, winning_candidate

# Confidence band edges: finer near 1, where auto-label thresholds are chosen. The last band is closed: [0.95, 1].
DEFAULT_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


def check_edges(edges) -> tuple[float, ...]:
    """The band edges as a tuple of floats; ValueError unless there are two or more, increasing, within 0..1."""
    edges = tuple(float(edge) for edge in edges)
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])) or edges[0] < 0 or edges[-1] > 1:
        raise ValueError(f"confidence_edges must be two or more increasing numbers within 0..1, got {list(edges)}")
    return edges


def wilson(hits: int, total: int) -> tuple[float | None, float | None, float | None]:
    """(share, 95% low, 95% high) of `hits` out of `total` with Wilson's interval; all None when total is 0."""
    from statsmodels.stats.proportion import proportion_confint

    if total == 0:
        return None, None, None
    low, high = proportion_confint(hits, total, alpha=0.05, method="wilson")
    return hits / total, float(low), float(high)


def item_prelabels(table: JudgmentTable, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(preferred, confidence), each (items,) for the sorted `items` (as `label_matrix` gives them): the model's
    preferred candidate as a preference sign (-1 the first candidate by id, +1 the second, like
    `judgments.preference`), and its confidence; NaN where an item has no pre-label."""
    has = table.prelabel != ""
    keys, first = np.unique(table.item[has], return_index=True)  # every judgment of an item carries the same one
    rows = np.flatnonzero(has)[first]
    second = np.where(table.left[rows] < table.right[rows], table.right[rows], table.left[rows])
    preferred = np.full(len(items), np.nan)
    confidence = np.full(len(items), np.nan)
    known = np.isin(keys, items)  # items with a pre-label that the caller did not ask about are left out
    position = np.searchsorted(items, keys[known])
    preferred[position] = np.where(table.prelabel[rows] == second, 1.0, -1.0)[known]
    confidence[position] = table.prelabel_confidence[rows][known]
    return preferred, confidence


def confidence_bands(
    preferred: np.ndarray, confidence: np.ndarray, consensus: np.ndarray, *, edges=DEFAULT_EDGES
) -> dict:
    """The model's agreement with the human `consensus` (items,) per confidence band and from each edge up.

    `preferred` and `consensus` are preference signs (items,) (0 a tie or both bad, NaN none). Only items with a
    pre-label and a decisive consensus count for accuracy; consensus ties and undecided items are counted apart.
    Returns {items, agree, accuracy, ci_low, ci_high, ties, undecided, outside_bands, bands: [{low, high, items,
    agree, accuracy, ci_low, ci_high, ties, undecided}], thresholds: [{threshold, coverage, items, agree,
    accuracy, ci_low, ci_high}]}; coverage is the share of the decisive items at that confidence or above.
    """
    edges = check_edges(edges)
    scored = ~np.isnan(preferred) & ~np.isnan(confidence)
    decided = scored & ~np.isnan(consensus) & (np.nan_to_num(consensus) != 0)
    ties = scored & (consensus == 0)
    undecided = scored & np.isnan(consensus)
    agree = decided & (preferred == consensus)
    # Half-open bands [low, high), except the last, which includes its top edge (a confidence of exactly 1).
    band = np.searchsorted(edges, confidence, side="right") - 1
    band[confidence == edges[-1]] = len(edges) - 2
    inside = (band >= 0) & (band < len(edges) - 1)

    def counts(mask) -> dict:
        share, low, high = wilson(int((agree & mask).sum()), int((decided & mask).sum()))
        return {
            "items": int((decided & mask).sum()),
            "agree": int((agree & mask).sum()),
            "accuracy": share,
            "ci_low": low,
            "ci_high": high,
        }

    bands = [
        {
            "low": low,
            "high": high,
            **counts(band == i),
            "ties": int((ties & (band == i)).sum()),
            "undecided": int((undecided & (band == i)).sum()),
        }
        for i, (low, high) in enumerate(zip(edges, edges[1:]))
    ]
    total = int(decided.sum())
    thresholds = []
    for edge in edges[:-1]:  # "auto-label from `edge` up"; the top edge would leave only exact certainties
        above = confidence >= edge
        thresholds.append(
            {"threshold": edge, "coverage": float((decided & above).sum() / total) if total else None, **counts(above)}
        )
    return {
        **counts(np.ones(len(preferred), dtype=bool)),
        "ties": int(ties.sum()),
        "undecided": int(undecided.sum()),
        "outside_bands": int((scored & ~inside).sum()),
        "bands": bands,
        "thresholds": thresholds,
    }


def anchoring(table: JudgmentTable) -> dict:
    """How often people's decisive judgments of pre-labelled items chose the model's candidate, for those shown
    the pre-label before voting (`seen`) and those not (`unseen`), with the difference and a two-proportion z-test.

    Every judgment counts (a repeat is another vote cast with or without the model's answer in view); model
    auto-labels never do. A group with no judgments is None, and so are the figures that need both. Returns
    {seen, unseen: {judgments, followed, share, ci_low, ci_high, mean_confidence} | None, difference, p_value,
    ties (tie or both-bad judgments, not counted), unknown (decisive judgments with no record of what was shown)}.
    """
    rated = (table.prelabel != "") & ~table.model_label
    decisive = rated & (table.winner != 0)
    followed = decisive & (winning_candidate(table) == table.prelabel)
    known = ~np.isnan(table.prelabel_seen)
    groups = {}
    for name, shown in (("seen", 1.0), ("unseen", 0.0)):
        mask = decisive & (table.prelabel_seen == shown)
        n, k = int(mask.sum()), int((followed & mask).sum())
        share, low, high = wilson(k, n)
        groups[name] = None
        if n:
            groups[name] = {
                "judgments": n,
                "followed": k,
                "share": share,
                "ci_low": low,
                "ci_high": high,
                # Groups that judged surer items follow the model more without any anchoring: show how sure.
                "mean_confidence": _mean(table.prelabel_confidence[mask]),
            }
    seen, unseen = groups["seen"], groups["unseen"]
    difference = p_value = None
    if seen and unseen:
        difference = seen["share"] - unseen["share"]
        p_value = two_proportion_p(seen["followed"], seen["judgments"], unseen["followed"], unseen["judgments"])
    return {
        "seen": seen,
        "unseen": unseen,
        "difference": difference,
        "p_value": p_value,
        "ties": int((rated & known & (table.winner == 0)).sum()),
        "unknown": int((decisive & ~known).sum()),
    }


def _mean(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else None


def two_proportion_p(hits_a: int, total_a: int, hits_b: int, total_b: int) -> float | None:
    """Two-sided p-value of statsmodels' two-proportion z-test; None when it is undefined (all hits or none)."""
    from statsmodels.stats.proportion import proportions_ztest

    if hits_a + hits_b in (0, total_a + total_b):  # the pooled share is 0 or 1: zero variance, no test
        return None
    _, p_value = proportions_ztest([hits_a, hits_b], [total_a, total_b])
    return float(p_value)


def prelabel_figures(humans: JudgmentTable, items: np.ndarray, consensus: np.ndarray, *, edges, auto_labels: int):
    """The report's pre-label section: {auto_labels, confidence: `confidence_bands`, anchoring: `anchoring`}
    from people's judgments `humans`, the report's sorted `items` and their `consensus` (items,)."""
    preferred, confidence = item_prelabels(humans, items)
    return {
        "auto_labels": auto_labels,
        "confidence": confidence_bands(preferred, confidence, consensus, edges=edges),
        "anchoring": anchoring(humans),
    }
