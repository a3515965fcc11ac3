"""How sure a reward model (or an ensemble) is about pairs and rankings: pre-labels and active-learning priorities.

Pure numpy and scikit-learn, no torch: `plumb collect score` and the active-learning bench
turn reward scores (from `reward.score`) into per-task confidence, doubt and a serving order.

Shapes: a model's rewards of the two sides of `n` pairs give margins of shape (n,); an
ensemble of `k` models gives (k, n). A margin is a Bradley-Terry logit: sigmoid(margin) is
the probability that the first response is preferred.
"""

import numpy as np


def sigmoid(values) -> np.ndarray:
    """The logistic function, without overflow for large negative inputs."""
    values = np.asarray(values, float)
    return np.exp(-np.logaddexp(0.0, -values))


def as_models_by_pairs(margins) -> np.ndarray:
    """Margins as a (models, pairs) float array: a 1-D array is one model's."""
    margins = np.asarray(margins, float)
    if margins.ndim == 1:
        return margins[None, :]
    if margins.ndim != 2:
        raise ValueError(f"margins must be (pairs,) or (models, pairs), got shape {margins.shape}")
    return margins


def pair_margins(scores_first: np.ndarray, scores_second: np.ndarray) -> np.ndarray:
    """Reward margins first minus second, shape (models, pairs); 1-D scores are one model's."""
    first, second = np.asarray(scores_first, float), np.asarray(scores_second, float)
    if first.shape != second.shape:
        raise ValueError(f"scores of the two sides differ in shape: {first.shape} vs {second.shape}")
    return as_models_by_pairs(first - second)


def prelabel(margins) -> tuple[np.ndarray, np.ndarray]:
    """Per pair (first_preferred, confidence): the side the mean margin favours and sigmoid(|mean margin|) in [0.5, 1].

    A mean margin of exactly 0 gives confidence 0.5 and first_preferred False: no side is favoured.
    """
    mean = as_models_by_pairs(margins).mean(axis=0)
    return mean > 0, sigmoid(np.abs(mean))


def doubt(margins) -> np.ndarray:
    """How unsure the model(s) are about each pair, in (0, 1), higher = more unsure: 1 - sigmoid(|mean| - std).

    With one model this is 1 - confidence. With an ensemble (std over models, ddof=1) it is
    1 - the confidence of a margin one standard deviation closer to zero: a lower confidence
    bound. Mean and spread are both in logits, so they add without a scale to tune (unlike
    std + (1 - confidence), whose std term swamps the other for large rewards), and doubt
    rises with the spread, falls with |mean|, and passes 0.5 once the models disagree on the side.
    """
    margins = as_models_by_pairs(margins)
    spread = margins.std(axis=0, ddof=1) if margins.shape[0] > 1 else np.zeros(margins.shape[1])
    return 1.0 - sigmoid(np.abs(margins.mean(axis=0)) - spread)


def ranking_doubt(scores) -> float:
    """Doubt of a K-candidate ranking task: the doubt of its closest pair; 0 with fewer than 2 candidates.

    `scores` is (K,) for one model or (models, K). A rater's ranking settles every pair, so
    the task teaches most where the model is least sure of any one pair.
    """
    scores = as_models_by_pairs(scores)
    first, second = np.triu_indices(scores.shape[1], k=1)
    if first.size == 0:
        return 0.0
    return float(doubt(scores[:, first] - scores[:, second]).max())


def ranking_doubts(tasks) -> np.ndarray:
    """`ranking_doubt` of each task in a list (tasks may have different K), shape (tasks,)."""
    return np.array([ranking_doubt(scores) for scores in tasks], float)


def doubt_order(doubt_values) -> np.ndarray:
    """Indices from most to least doubtful; ties keep their input order."""
    return np.argsort(-np.asarray(doubt_values, float), kind="stable")


def priorities_from_order(order: np.ndarray) -> np.ndarray:
    """Priorities for a serving order: the first served gets len(order), the last 1 (0 stays free for unscored)."""
    priorities = np.empty(len(order), float)
    priorities[order] = np.arange(len(order), 0, -1)
    return priorities


def cluster_labels(embeddings: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """KMeans cluster of each row, with no more clusters than distinct rows (KMeans warns on duplicates otherwise)."""
    from sklearn.cluster import KMeans

    distinct = len(np.unique(embeddings, axis=0))
    kmeans = KMeans(n_clusters=min(clusters, distinct), n_init=4, random_state=seed)
    return kmeans.fit_predict(embeddings)


def diverse_priorities(doubt: np.ndarray, embeddings: np.ndarray | None, *, clusters: int, seed: int = 0) -> np.ndarray:
    """Priorities (higher = served first): round-robin over KMeans clusters of the embeddings, each cluster's most
    doubtful first; without embeddings (or clusters <= 1) simply by doubt.

    Pure doubt order can fill a batch with near-duplicates of one confusing prompt; taking
    the top of every cluster in turn spreads labels over kinds of prompt. Within a round the
    more doubtful cluster head goes first. Pass L2-normalised embeddings for cosine geometry.
    """
    doubt = np.asarray(doubt, float)
    if embeddings is None or clusters <= 1 or len(doubt) <= 1:
        return priorities_from_order(doubt_order(doubt))
    embeddings = np.asarray(embeddings, float)
    if len(embeddings) != len(doubt):
        raise ValueError(f"{len(embeddings)} embeddings for {len(doubt)} doubt values")
    labels = cluster_labels(embeddings, clusters, seed)
    rank_in_cluster = np.empty(len(doubt), int)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rank_in_cluster[members[doubt_order(doubt[members])]] = np.arange(len(members))
    # lexsort's last key is primary: rank within cluster, then doubt (descending), then index for ties
    order = np.lexsort((np.arange(len(doubt)), -doubt, rank_in_cluster))
    return priorities_from_order(order)
