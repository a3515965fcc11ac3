"""Plumb's Bradley-Terry leaderboard against a per-battle scikit-learn logistic regression, in one process.

Synthetic battles among 20 policies of known Elo strength (10% ties at even odds, fewer
between mismatched policies, so a tie-as-half-a-win fit is consistent). For each size:
Plumb's time (count the battles into cells, then Newton on the counts) and with 100
bootstrap rounds; scikit-learn's time for the per-battle fit public arena notebooks use
(every battle duplicated, a tie one win for each side, no penalty); the time ratio, the
largest rating difference between the two fits in Elo, and how well each recovers the truth.

    .venv/bin/python bench/arena_speed.py
    .venv/bin/python bench/arena_speed.py --sizes 10000 100000 --sklearn_max 100000

Prints one row per size, then the results as one JSON line.
"""

import argparse
import json
import math
import time

import numpy as np
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression  # imported before any timing

from collect.services.arena.ratings import bradley_terry, count_battles, leaderboard, to_elo, win_matrix

POLICIES = 20


def simulate(n: int, true_elo: np.ndarray, rng: np.random.Generator, tie_rate: float = 0.1):
    """(model_a, model_b, winner) str arrays of n battles between random distinct pairs of policies."""
    names = np.array([f"policy-{i:02d}" for i in range(len(true_elo))])
    a = rng.integers(0, len(names), n)
    b = (a + rng.integers(1, len(names), n)) % len(names)
    p_a = 1 / (1 + 10 ** ((true_elo[b] - true_elo[a]) / 400))
    p_tie = 2 * tie_rate * np.minimum(p_a, 1 - p_a)  # keeps a's expected score (ties half) at p_a
    u = rng.random(n)
    winner = np.where(u < p_a - p_tie / 2, "model_a", np.where(u < p_a + p_tie / 2, "tie", "model_b"))
    return names[a], names[b], winner


def plumb_fit(model_a, model_b, winner) -> tuple[np.ndarray, np.ndarray]:
    """(policies, Elo ratings) from Plumb's count-then-fit path, with no bootstrap."""
    counts = count_battles(model_a, model_b, winner)
    strengths, _ = bradley_terry(win_matrix(counts.cells, counts.counts, len(counts.policies)))
    return counts.policies, to_elo(strengths)


def sklearn_fit(model_a, model_b, winner) -> tuple[np.ndarray, np.ndarray]:
    """(policies, Elo ratings) from one logistic-regression row per battle, each battle twice (ties split)."""
    policies, index = np.unique(np.concatenate([model_a, model_b]), return_inverse=True)
    n = len(model_a)
    rows = np.zeros((2 * n, len(policies)))
    battle = np.arange(2 * n)
    rows[battle, np.tile(index[:n], 2)] = math.log(10)
    rows[battle, np.tile(index[n:], 2)] = -math.log(10)
    won = np.concatenate([winner == "model_a", (winner == "model_a") | (winner == "tie")]).astype(float)
    model = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-8, max_iter=1000).fit(rows, won)
    return policies, 1000 + 400 * model.coef_[0]


def timed(function, *args):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def recovery(policies: np.ndarray, ratings: np.ndarray, true_elo: np.ndarray) -> dict:
    """Spearman rho and largest error (after centering both on 1000) against the true strengths."""
    truth = true_elo[[int(p.split("-")[1]) for p in policies]]
    truth = truth - truth.mean() + 1000
    return {
        "spearman": float(spearmanr(ratings, truth).statistic),
        "max_error_elo": float(np.abs(ratings - truth).max()),
    }


def bench_size(n: int, rounds: int, sklearn_max: int, rng: np.random.Generator, true_elo: np.ndarray) -> dict:
    """Every figure for one number of battles."""
    battles = simulate(n, true_elo, rng)
    plumb_s, (policies, ours) = timed(plumb_fit, *battles)
    boot_s, board = timed(lambda: leaderboard(count_battles(*battles), rounds=rounds))
    row = {
        "battles": n,
        "plumb_fit_s": plumb_s,
        "plumb_fit_and_bootstrap_s": boot_s,
        "bootstrap_rounds": board.rounds,
        "plumb_recovery": recovery(policies, ours, true_elo),
        "ci_width_mean_elo": float(np.mean(board.ci_high - board.ci_low)),
    }
    if n <= sklearn_max:
        sklearn_s, (sk_policies, theirs) = timed(sklearn_fit, *battles)
        assert (sk_policies == policies).all()
        row.update(
            {
                "sklearn_fit_s": sklearn_s,
                "speedup": sklearn_s / plumb_s,
                "max_rating_difference_elo": float(np.abs(ours - theirs).max()),
                "sklearn_recovery": recovery(sk_policies, theirs, true_elo),
            }
        )
    return row


def main() -> None:
    """Run every size and print the table, then one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds of Plumb's leaderboard")
    parser.add_argument("--sklearn_max", type=int, default=1_000_000, help="largest size to fit with scikit-learn")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    true_elo = np.sort(rng.normal(1000, 150, POLICIES))
    print(f"{POLICIES} policies, true Elo {true_elo.min():.0f}..{true_elo.max():.0f}, {args.rounds} bootstrap rounds")
    header = (
        f"{'battles':>9}  {'plumb s':>8}  {'+boot s':>8}  {'sklearn s':>9}  {'ratio':>7}  {'max diff':>8}  "
        f"{'rho plumb/sk':>13}  {'max err plumb/sk':>16}"
    )
    print(header)
    results = []
    for n in args.sizes:
        row = bench_size(n, args.rounds, args.sklearn_max, rng, true_elo)
        results.append(row)
        sk = row.get("sklearn_recovery", {"spearman": float("nan"), "max_error_elo": float("nan")})
        print(
            f"{n:>9}  {row['plumb_fit_s']:8.3f}  {row['plumb_fit_and_bootstrap_s']:8.3f}  "
            f"{row.get('sklearn_fit_s', float('nan')):9.3f}  {row.get('speedup', float('nan')):6.1f}x  "
            f"{row.get('max_rating_difference_elo', float('nan')):8.4f}  "
            f"{row['plumb_recovery']['spearman']:6.3f}/{sk['spearman']:6.3f}  "
            f"{row['plumb_recovery']['max_error_elo']:7.1f}/{sk['max_error_elo']:7.1f}",
            flush=True,
        )
    print(json.dumps({"policies": POLICIES, "results": results}))


if __name__ == "__main__":
    main()
