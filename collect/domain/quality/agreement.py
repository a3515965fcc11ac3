"""Inter-rater agreement on a label matrix `labels` (items, raters): a category code per cell, NaN where missing.

The coefficients come from well-kept libraries (scikit-learn, statsmodels, krippendorff);
this module only arranges the data for them and states which items each one used.
"""

from itertools import combinations

import numpy as np


def categories(labels: np.ndarray) -> np.ndarray:
    """(k,) the sorted distinct labels of `labels` (items, raters), NaN left out."""
    return np.unique(labels[~np.isnan(labels)])


def pair_counts(labels: np.ndarray, *, exclude: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(shared, agreed), each (raters, raters): items both raters labelled, and items they labelled alike.

    With `exclude` (e.g. the tie label), an item counts for a pair only if neither rater gave that label.
    """
    present = ~np.isnan(labels)
    if exclude is not None:
        present &= labels != exclude
    present = present.astype(float)
    agreed = np.zeros((labels.shape[1], labels.shape[1]))
    for category in categories(labels):
        if category != exclude:
            chose = (labels == category).astype(float)
            agreed += chose.T @ chose
    return present.T @ present, agreed


def _mean_over_pairs(shared: np.ndarray, agreed: np.ndarray, min_shared: int) -> float | None:
    upper = np.triu(shared >= max(min_shared, 1), k=1)
    if not upper.any():
        return None
    return float(np.mean(agreed[upper] / shared[upper]))


def raw_agreement(labels: np.ndarray, *, min_shared: int = 1) -> float | None:
    """For each pair of raters, the share of shared items they labelled alike (a tie is a label); mean over pairs."""
    return _mean_over_pairs(*pair_counts(labels), min_shared)


def raw_agreement_no_ties(labels: np.ndarray, *, tie: float = 0, min_shared: int = 1) -> float | None:
    """`raw_agreement` counting, for each pair, only the items where neither of the two said `tie`."""
    return _mean_over_pairs(*pair_counts(labels, exclude=tie), min_shared)


def cohen_kappa_pairs(labels: np.ndarray, raters, *, min_shared: int = 10) -> list[dict]:
    """Cohen's kappa for each pair of raters with at least `min_shared` shared items.

    Returns [{rater_a, rater_b, shared, kappa}]; kappa is None when undefined (both gave one label only).
    """
    from sklearn.metrics import cohen_kappa_score

    everything = categories(labels)
    rows = []
    for a, b in combinations(range(labels.shape[1]), 2):
        both = ~np.isnan(labels[:, a]) & ~np.isnan(labels[:, b])
        if both.sum() < min_shared:
            continue
        kappa = None  # stays None when one label is used throughout: chance agreement is 1, kappa 0/0
        if len(np.unique(np.concatenate([labels[both, a], labels[both, b]]))) > 1:
            kappa = cohen_kappa_score(labels[both, a], labels[both, b], labels=everything)
        rows.append(
            {
                "rater_a": str(raters[a]),
                "rater_b": str(raters[b]),
                "shared": int(both.sum()),
                "kappa": None if kappa is None else float(kappa),
            }
        )
    return rows


def fleiss_kappa(labels: np.ndarray) -> dict:
    """Fleiss' kappa over the items rated by the most common number (at least 2) of raters.

    Fleiss' formula needs the same number of ratings per item; returns {kappa, items, raters_per_item}.
    """
    from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss

    counts = np.stack([(labels == c).sum(axis=1) for c in categories(labels)], axis=1)  # (items, k)
    per_item = counts.sum(axis=1)
    if not (per_item >= 2).any():
        return {"kappa": None, "items": 0, "raters_per_item": None}
    common = int(np.bincount(per_item[per_item >= 2]).argmax())
    table = counts[per_item == common]
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = float(statsmodels_fleiss(table, method="fleiss"))
    return {"kappa": None if np.isnan(kappa) else kappa, "items": len(table), "raters_per_item": common}


def krippendorff_alpha(labels: np.ndarray, *, level: str = "nominal") -> float | None:
    """Krippendorff's alpha (`level` nominal or ordinal); missing cells allowed, items with one label ignored."""
    import krippendorff

    everything = categories(labels)
    pairable = (~np.isnan(labels)).sum(axis=1) >= 2
    if len(everything) < 2 or not pairable.any():
        return None  # undefined: one label throughout, or no item with two labels to compare
    alpha = krippendorff.alpha(reliability_data=labels.T, value_domain=everything, level_of_measurement=level)
    return float(alpha)


def agreement_summary(labels: np.ndarray, ordinal: np.ndarray, raters, *, tie: float = 0, min_shared: int = 10) -> dict:
    """All agreement figures of a campaign: nominal `labels` and `ordinal` labels (items, raters)."""
    fleiss = fleiss_kappa(labels)
    return {
        "items": int(labels.shape[0]),
        "raters": int(labels.shape[1]),
        "raw_agreement": raw_agreement(labels),
        "raw_agreement_no_ties": raw_agreement_no_ties(labels, tie=tie),
        "fleiss_kappa": fleiss["kappa"],
        "fleiss_items": fleiss["items"],
        "krippendorff_alpha_nominal": krippendorff_alpha(labels, level="nominal"),
        "krippendorff_alpha_ordinal": krippendorff_alpha(ordinal, level="ordinal"),
        "cohen_kappa_pairs": cohen_kappa_pairs(labels, raters, min_shared=min_shared),
    }
