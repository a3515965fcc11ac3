"""The noise model of simulated raters: how a rater who follows an oracle's scores answers a task.

Pure functions, no I/O: `collect.services.simulation` feeds them the oracle's scores of the
candidates in the order a rater was shown them. For a pair with oracle scores a (shown
first, "A") and b, gap = a - b, a rater answers in this order:

1. position bias: with probability `position_bias` they pick A, whatever the scores
   (preference +1, "slightly better": a lazy click carries no conviction);
2. both bad: when both scores are below `both_bad_below`, they say "both bad";
3. tie: when |gap| < `tie_margin` (or the scores are equal), they say "tie" (preference 0);
4. otherwise they prefer the oracle's better answer with the Bradley-Terry probability
   P(agree) = sigmoid(|gap| / temperature) (temperature 0: always), the other one
   otherwise, with strength clip(ceil(|gap| / strength_step), 1, 3).

So over many tasks: P(A) = pb + (1 - pb) * P(A | no position bias), and the tie rate
is (1 - pb) on pairs within the tie margin. A ranking of K follows Plackett-Luce with
the same temperature (Gumbel noise on score / temperature), which for K = 2 is the
pairwise rule above.
"""

import math
import random
from dataclasses import dataclass, replace

import numpy as np

EULER_GAMMA = 0.5772156649015329  # the mean of a standard Gumbel variable


@dataclass(frozen=True)
class SimulatedRaterParams:
    """How a simulated rater departs from its oracle; see the module docstring for the formulas."""

    temperature: float = 1.0  # Bradley-Terry temperature on the oracle's score gap; 0: always follow the oracle
    position_bias: float = 0.0  # probability of just picking the answer shown first (rankings: the shown order)
    tie_margin: float = 0.0  # |gap| below this is a tie
    both_bad_below: float | None = None  # both oracle scores below this: "both bad"
    strength_step: float = 1.0  # strength 1..3 of a preference = ceil(|gap| / strength_step)
    rater_spread: float = 0.0  # std of each rater's log-temperature and logit position bias around these values

    def __post_init__(self):
        checks = [
            ("temperature", self.temperature >= 0, "0 or more"),
            ("position_bias", 0 <= self.position_bias <= 1, "a probability in [0, 1]"),
            ("tie_margin", self.tie_margin >= 0, "0 or more"),
            ("strength_step", self.strength_step > 0, "positive"),
            ("rater_spread", self.rater_spread >= 0, "0 or more"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {getattr(self, name)!r}")


def sigmoid(x: float) -> float:
    """1 / (1 + exp(-x)), without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def logit(p: float) -> float:
    """log(p / (1 - p)): the inverse of `sigmoid`; +-inf at 1 and 0."""
    if p <= 0:
        return -math.inf
    if p >= 1:
        return math.inf
    return math.log(p / (1 - p))


def agreement_probability(gap: float, temperature: float) -> float:
    """P(a rater prefers the oracle's better answer) = sigmoid(|gap| / temperature); 1 at temperature 0 (gap != 0)."""
    if temperature == 0:
        return 1.0 if gap != 0 else 0.5
    return sigmoid(abs(gap) / temperature)


def is_tie(gap: float, tie_margin: float) -> bool:
    """Whether the oracle sees no difference: |gap| < tie_margin, or equal scores."""
    return abs(gap) < tie_margin or gap == 0


def preference_strength(gap: float, step: float) -> int:
    """Strength 1..3 (slightly, plain, much better) of a preference: clip(ceil(|gap| / step), 1, 3)."""
    return int(min(3, max(1, math.ceil(abs(gap) / step))))


def rater_params(params: SimulatedRaterParams, rater_name: str, seed: int) -> SimulatedRaterParams:
    """One rater's parameters, drawn around the campaign's from (seed, rater name): the same each time.

    temperature * exp(spread * z1) and sigmoid(logit(position_bias) + spread * z2), z ~ N(0, 1):
    both stay in range, and a position bias of exactly 0 or 1 stays so. Spread 0: `params` unchanged.
    """
    if params.rater_spread == 0:
        return params
    rng = random.Random(f"{seed}:{rater_name}")  # str seeds hash with SHA-512: stable across runs and machines
    z_temperature, z_bias = rng.gauss(0, 1), rng.gauss(0, 1)
    spread = params.rater_spread
    return replace(
        params,
        temperature=params.temperature * math.exp(spread * z_temperature),
        position_bias=sigmoid(logit(params.position_bias) + spread * z_bias)
        if 0 < params.position_bias < 1
        else params.position_bias,
    )


def pairwise_answer(score_a: float, score_b: float, params: SimulatedRaterParams, rng: random.Random) -> dict:
    """The answer to a pair shown as (A, B) with these oracle scores: {"preference": -3..3 (positive: A better),
    "both_bad": bool}, in display order."""
    if rng.random() < params.position_bias:
        return {"preference": 1, "both_bad": False}
    if params.both_bad_below is not None and max(score_a, score_b) < params.both_bad_below:
        return {"preference": None, "both_bad": True}
    gap = score_a - score_b
    if is_tie(gap, params.tie_margin):
        return {"preference": 0, "both_bad": False}
    oracle_sign = 1 if gap > 0 else -1
    sign = oracle_sign if rng.random() < agreement_probability(gap, params.temperature) else -oracle_sign
    return {"preference": sign * preference_strength(gap, params.strength_step), "both_bad": False}


def ranking_answer(scores: list[float], params: SimulatedRaterParams, rng: random.Random) -> list[int]:
    """Ranks (1 = best, ties share a rank, dense) of K candidates whose oracle scores are given in display order.

    Plackett-Luce: order by score / temperature + Gumbel noise (temperature 0: by score), so
    for K = 2 the better one comes first with probability sigmoid(|gap| / temperature).
    Neighbours in that order whose scores differ by less than `tie_margin` share a rank.
    With probability `position_bias` the rater keeps the shown order: ranks 1..K.
    """
    if rng.random() < params.position_bias:
        return list(range(1, len(scores) + 1))
    if params.temperature == 0:
        keys = list(scores)
    else:
        keys = [score / params.temperature - math.log(-math.log(_open_unit(rng))) for score in scores]
    order = sorted(range(len(scores)), key=lambda k: -keys[k])
    ranks, rank = [0] * len(scores), 1
    for position, k in enumerate(order):
        if position > 0 and not is_tie(scores[k] - scores[order[position - 1]], params.tie_margin):
            rank += 1
        ranks[k] = rank
    return ranks


def rating_edges(scores, points: int) -> list[float]:
    """The points - 1 cut points that split the campaign's oracle scores into `points` equally full Likert bins."""
    return np.quantile(np.asarray(scores, dtype=float), [k / points for k in range(1, points)]).tolist()


def rating_answer(
    scores: list[float], edges: list[float], params: SimulatedRaterParams, rng: random.Random
) -> list[int]:
    """Likert ratings 1..len(edges) + 1 of candidates: the quantile bin of score + temperature * (Gumbel - gamma).

    Mean-zero noise of the same temperature as the pairwise rule; position bias does not apply
    (each candidate is rated on its own).
    """
    ratings = []
    for score in scores:
        noise = 0.0 if params.temperature == 0 else -math.log(-math.log(_open_unit(rng))) - EULER_GAMMA
        ratings.append(1 + int(np.searchsorted(edges, score + params.temperature * noise, side="right")))
    return ratings


def _open_unit(rng: random.Random) -> float:
    # random() can return 0.0, whose log is undefined; the Gumbel transform needs (0, 1)
    return rng.random() or 1e-300
