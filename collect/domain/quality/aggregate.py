"""One label per item from several raters: majority vote or Dawid-Skene, and how far to trust it.

Inputs are label matrices `labels` (items, raters) of category codes with NaN where a
rater did not judge the item (see `judgments.label_matrix`).
"""

import numpy as np

from collect.domain.quality.agreement import categories


def one_hot(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(items, raters, k) 0/1: which of the k category `values` each cell holds (all 0 where missing)."""
    return (labels[..., None] == values).astype(float)


def majority_vote(labels: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(consensus, support) (items,): the label with the most (weighted) votes, and its share of the votes.

    `weights` (raters,) defaults to 1 each. A tie for first place leaves the item undecided: NaN consensus.
    """
    values = categories(labels)
    weights = np.ones(labels.shape[1]) if weights is None else np.asarray(weights, dtype=float)
    votes = np.einsum("irk,r->ik", one_hot(labels, values), weights)  # (items, k)
    top = votes.max(axis=1)
    decided = (np.isclose(votes, top[:, None]).sum(axis=1) == 1) & (top > 0)
    consensus = np.where(decided, values[votes.argmax(axis=1)], np.nan)
    total = votes.sum(axis=1)
    support = np.divide(top, total, out=np.zeros_like(top), where=total > 0)
    return consensus, support


def estimate_confusions(observed: np.ndarray, posteriors: np.ndarray, *, smoothing: float = 0.01):
    """M-step of Dawid-Skene: (priors (k,), confusions (raters, k, k)) from `observed` (items, raters, k)
    and item `posteriors` (items, k); confusions[r, true, given] = P(rater r says `given` | truth `true`).

    `smoothing` pseudo-counts keep a category a rater never used from getting probability zero.
    """
    priors = posteriors.mean(axis=0)
    counts = np.einsum("ij,irl->rjl", posteriors, observed) + smoothing
    return priors, counts / counts.sum(axis=2, keepdims=True)


def item_posteriors(observed: np.ndarray, priors: np.ndarray, confusions: np.ndarray) -> np.ndarray:
    """E-step of Dawid-Skene: (items, k) P(true label | the labels given), from the priors and confusions."""
    log_joint = np.log(priors) + np.einsum("irl,rjl->ij", observed, np.log(confusions))
    log_joint -= log_joint.max(axis=1, keepdims=True)  # for exp without overflow
    joint = np.exp(log_joint)
    return joint / joint.sum(axis=1, keepdims=True)


def dawid_skene(labels: np.ndarray, *, max_iter: int = 100, tol: float = 1e-6) -> dict:
    """Dawid & Skene (1979) EM: each rater's confusion matrix and each item's posterior over the true label.

    Starts from the vote shares. Returns {consensus (items,), support (items,) the posterior of the
    consensus, posteriors (items, k), confusions (raters, k, k), priors (k,), values (k,), iterations}.
    """
    values = categories(labels)
    observed = one_hot(labels, values)
    votes = observed.sum(axis=1)
    posteriors = np.where(votes.sum(axis=1, keepdims=True) > 0, votes, 1.0)
    posteriors /= posteriors.sum(axis=1, keepdims=True)
    for iteration in range(1, max_iter + 1):  # noqa: B007 (reported after the loop)
        priors, confusions = estimate_confusions(observed, posteriors)
        updated = item_posteriors(observed, priors, confusions)
        change = np.abs(updated - posteriors).max()
        posteriors = updated
        if change < tol:
            break
    return {
        "consensus": values[posteriors.argmax(axis=1)],
        "support": posteriors.max(axis=1),
        "posteriors": posteriors,
        "confusions": confusions,
        "priors": priors,
        "values": values,
        "iterations": iteration,
    }


def reliability_weights(rater_rows: list[dict], *, flagged_weight: float = 0.25) -> np.ndarray:
    """(raters,) vote weights in the order of `rater_rows` (from `raters.rater_report`): 1, or
    `flagged_weight` for a rater flagged for failing gold or repeat checks."""
    return np.array([flagged_weight if row["flags"] else 1.0 for row in rater_rows])


def contested_items(consensus: np.ndarray, support: np.ndarray, *, min_agreement: float) -> np.ndarray:
    """(items,) bool: items with no consensus or whose consensus has less than `min_agreement` support."""
    return np.isnan(consensus) | (support < min_agreement)


def model_agreement(model_labels: np.ndarray, consensus: np.ndarray, *, tie: float = 0) -> dict:
    """How often a reward model's pre-labels (items,) match the human consensus (items,); NaN = none.

    Returns {items, agreement, items_no_ties, agreement_no_ties, kappa} (None where undefined).
    """
    from sklearn.metrics import cohen_kappa_score

    both = ~np.isnan(model_labels) & ~np.isnan(consensus)
    strict = both & (model_labels != tie) & (consensus != tie)
    same = model_labels == consensus
    kappa = None
    if both.any() and len(np.unique(np.concatenate([model_labels[both], consensus[both]]))) > 1:
        kappa = float(cohen_kappa_score(model_labels[both], consensus[both]))
    return {
        "items": int(both.sum()),
        "agreement": float(same[both].mean()) if both.any() else None,
        "items_no_ties": int(strict.sum()),
        "agreement_no_ties": float(same[strict].mean()) if strict.any() else None,
        "kappa": kappa,
    }
