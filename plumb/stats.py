"""Percentile bootstrap intervals over examples, shared by every stage's evaluation.

`bootstrap_ci` is the interval of a mean of per-example values; `bootstrap_statistic_ci` of any statistic of
a resampled set of examples (a corpus BLEU, a pooled perplexity), which cannot be averaged per example.
"""

import numpy as np


def resample_indices(n: int, *, samples: int, seed: int) -> np.ndarray:
    """(samples, n) indices drawn with replacement: one bootstrap resample of the n examples per row."""
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def percentile_interval(estimates, *, confidence: float) -> tuple[float, float]:
    """The central `confidence` share of the bootstrap estimates."""
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(np.asarray(estimates, float), [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_ci(values, *, samples: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (n,): resample pairs with replacement `samples` times."""
    values = np.asarray(values, float)
    if values.size == 0:
        return float("nan"), float("nan")
    means = values[resample_indices(values.size, samples=samples, seed=seed)].mean(axis=1)
    return percentile_interval(means, confidence=confidence)


def bootstrap_statistic_ci(
    n: int, statistic, *, samples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(indices)` over `samples` resamples of n examples."""
    if n == 0:
        return float("nan"), float("nan")
    estimates = [statistic(row) for row in resample_indices(n, samples=samples, seed=seed)]
    return percentile_interval(estimates, confidence=confidence)
