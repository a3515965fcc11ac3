"""Arena pairing rules: which two of a campaign's policies meet in the next battle. Pure maths, no I/O.

`uniform` draws every pair alike. `informative` weights each pair by how much one more
battle between them would narrow the interval of their head-to-head win probability,
under the Bradley-Terry fit of the battles so far (the leaderboard's model, `ratings`):

    theta      strengths of the fit (natural log-odds; ridge `l2`, as the Campaign tab's leaderboard)
    p_ij       P(i beats j) = expit(theta_i - theta_j),  q_ij = p_ij (1 - p_ij)
    F          the fit's Fisher information: the graph Laplacian with edge weights n_ij q_ij
    R_ij       Var(theta_i - theta_j) = (e_i - e_j)' (F + l2 I)^-1 (e_i - e_j)
    one more i-j battle adds q_ij to that edge, so R_ij becomes R_ij / (1 + q_ij R_ij) (Sherman-Morrison)
    SE(p_ij)   = q_ij sqrt(R_ij) (delta method)
    gain_ij    = q_ij (sqrt(R_ij) - sqrt(R_ij / (1 + q_ij R_ij))): the standard error one battle removes

A pair gains most when its policies are close (q_ij near 1/4: their intervals overlap) and
little is known of their difference (few battles, directly or through common opponents:
R_ij is large). A lone pair with n battles gets about sqrt(q) / (2 n^1.5): the form of the
active-sampling rule of the Chatbot Arena paper (Chiang et al. 2024), which works on each
pair's win rate alone; here the whole graph of battles stands behind R. On the log-odds
scale alone a lopsided pair would look the most uncertain and draw the most battles, though
each tells little; the win-probability scale weighs that back.

Weights are the gains, normalised, mixed with a share `exploration` of uniform so every
pair keeps a positive chance (the fit can be wrong, and a stale cached fit must not lock
raters onto one pair). Sampling in proportion, not always the best pair, also spreads
raters who start battles at the same moment from the same fit. The sides are still random.
`bench/arena_pairing.py` compares the two rules on simulated campaigns.
"""

import random
from collections.abc import Sequence

import numpy as np
from scipy.special import expit

from collect.services.arena.ratings import BattleCounts, bradley_terry, win_matrix

EXPLORATION = 0.1
# The ridge of the leaderboard on the Campaign tab (`admin.campaign_quality`): finite ratings before a first loss.
RIDGE = 0.01


def pair_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) index arrays of the n (n - 1) / 2 unordered pairs i < j, the order every weight vector here uses."""
    return np.triu_indices(n, 1)


def informative_gains(wins: np.ndarray, *, l2: float = RIDGE) -> np.ndarray:
    """gain_ij (pairs,), in `pair_indices` order, from `wins` (n, n) (ties half to each): the standard error of
    P(i beats j) that one more i-j battle removes, under the ridge Bradley-Terry fit (the module's rule)."""
    wins = np.asarray(wins, dtype=float)
    n = len(wins)
    i, j = pair_indices(n)
    if l2 <= 0:  # with no ridge a pair that never met (or a policy that never lost) has no finite variance
        raise ValueError(f"l2 must be positive, got {l2}")
    theta, _ = bradley_terry(wins, l2=l2)  # not converged only drifts further apart; the ridge keeps it finite
    p = expit(theta[:, None] - theta[None, :])
    q = p * p.T
    edges = (wins + wins.T) * q
    fisher = np.diag(edges.sum(axis=1)) - edges
    # The all-ones term fixes the free shift of every strength; differences do not see it.
    covariance = np.linalg.inv(fisher + l2 * np.eye(n) + np.ones((n, n)) / n)
    variance = covariance[i, i] + covariance[j, j] - 2 * covariance[i, j]
    q = q[i, j]
    return q * (np.sqrt(variance) - np.sqrt(variance / (1 + q * variance)))


def informative_weights(wins: np.ndarray, *, l2: float = RIDGE, exploration: float = EXPLORATION) -> np.ndarray:
    """Sampling weights (pairs,) summing to 1, in `pair_indices` order: the `informative_gains` of `wins`
    normalised, mixed with a share `exploration` of uniform so that every pair keeps a positive weight."""
    if not 0 < exploration <= 1:  # 0 would let a pair's weight reach 0
        raise ValueError(f"exploration must be in (0, 1], got {exploration}")
    gain = informative_gains(wins, l2=l2)
    total = gain.sum()
    if not len(gain) or not np.isfinite(total) or total <= 0:  # nothing to learn anywhere: no pair is preferred
        return uniform_weights(len(np.asarray(wins)))
    return (1 - exploration) * gain / total + exploration / len(gain)


def uniform_weights(n: int) -> np.ndarray:
    """Equal weights over the pairs of n policies, in `pair_indices` order."""
    pairs = n * (n - 1) // 2
    return np.full(pairs, 1 / pairs) if pairs else np.zeros(0)


def wins_among(policies: Sequence[str], counts: BattleCounts | None) -> np.ndarray:
    """(n, n) wins[i, j]: battles `policies[i]` won against `policies[j]` (ties half) in `counts`, as
    `count_battles` builds them; battles of policies not in `policies` (no longer in the campaign) are left out."""
    n = len(policies)
    wins = np.zeros((n, n))
    if counts is None or not len(counts.cells):
        return wins
    counted = win_matrix(counts.cells, counts.counts, len(counts.policies))
    place = {name: k for k, name in enumerate(policies)}
    ours = [(k, place[str(name)]) for k, name in enumerate(counts.policies) if str(name) in place]
    if ours:
        source, target = (np.array(column) for column in zip(*ours, strict=True))
        wins[np.ix_(target, target)] = counted[np.ix_(source, source)]
    return wins


def pair_weights(
    policies: Sequence[str], counts: BattleCounts | None, *, pairing: str = "informative"
) -> dict[tuple[str, str], float]:
    """{(a, b): weight} over the unordered pairs of `policies` (a before b in their order) for rule `pairing`."""
    if pairing == "uniform":
        weights = uniform_weights(len(policies))
    elif pairing == "informative":
        weights = informative_weights(wins_among(policies, counts))
    else:
        raise ValueError(f"unknown pairing {pairing!r}: expected uniform or informative")
    i, j = pair_indices(len(policies))
    return {(policies[a], policies[b]): float(w) for a, b, w in zip(i, j, weights, strict=True)}


def draw_pair(items: Sequence, weights: np.ndarray, rng: random.Random) -> tuple:
    """Two of `items` drawn by `weights` over their pairs (`pair_indices` order), in random order."""
    i, j = pair_indices(len(items))
    k = rng.choices(range(len(weights)), weights=list(weights))[0]
    first, second = items[i[k]], items[j[k]]
    return (first, second) if rng.random() < 0.5 else (second, first)
