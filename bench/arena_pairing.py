"""Arena pairing: uniform against informative pair choice, on simulated battles among policies of known strength.

Both rules draw the same number of battles among the same policies (default six, Elo 1000
to 1550; 10% ties at even odds, fewer between mismatched policies), seed by seed. The
informative rule refits its weights every `--refresh` battles, as the app's cached fit does
(`collect.services.arena.pairing_fits`), and draws with the app's own `draw_pair`. At each
checkpoint the leaderboard the Campaign tab shows is fitted (ridge 0.01, 100 bootstrap
rounds): the mean width of the policies' 95% intervals (Elo points), the Spearman
correlation of its ratings with the truth, and the share of neighbours in the true order
whose intervals no longer overlap, averaged over seeds. Uniform also runs on to
`--uniform_factor` times the last checkpoint, so the battles it needs to reach the width
informative reached can be read off its curve (log-log interpolation). `--newcomer_after N`
first plays N uniform battles among all but the last policy, which then joins: a campaign
that adds a policy late.

    .venv/bin/python bench/arena_pairing.py
    .venv/bin/python bench/arena_pairing.py --elo 700 1000 1050 1100 1400 1700 --png outputs/bench/wide.png
    .venv/bin/python bench/arena_pairing.py --newcomer_after 2000 --checkpoints 100 250 500 1000

Prints a table, writes a PNG, and prints last the results as one JSON line.
"""

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from collect.services.arena.pairing import draw_pair, informative_weights, uniform_weights
from collect.services.arena.ratings import count_battles, leaderboard

RULES = ("uniform", "informative")


def outcome(a: int, b: int, true_elo: np.ndarray, tie_rate: float, rng: random.Random) -> str:
    """The winner field of one battle of a against b under Bradley-Terry with ties (a's expected score kept)."""
    p_a = 1 / (1 + 10 ** ((true_elo[b] - true_elo[a]) / 400))
    p_tie = 2 * tie_rate * min(p_a, 1 - p_a)
    u = rng.random()
    return "model_a" if u < p_a - p_tie / 2 else "tie" if u < p_a + p_tie / 2 else "model_b"


def wins_matrix(battles: list[tuple[int, int, str]], n: int) -> np.ndarray:
    """(n, n) wins (ties half to each) of the battles so far: what the informative rule refits on."""
    wins = np.zeros((n, n))
    share = {"model_a": (1.0, 0.0), "model_b": (0.0, 1.0), "tie": (0.5, 0.5)}
    for a, b, winner in battles:
        wins[a, b] += share[winner][0]
        wins[b, a] += share[winner][1]
    return wins


def measure(battles, names: np.ndarray, true_elo: np.ndarray, seed: int) -> tuple[float, float, float]:
    """(mean 95% interval width in Elo points, Spearman correlation with the truth, share of neighbours in the
    true order whose intervals no longer overlap) of the leaderboard's fit."""
    a, b, winner = zip(*battles, strict=True)
    counts = count_battles(names[list(a)], names[list(b)], list(winner))
    board = leaderboard(counts, l2=0.01, rounds=100, seed=seed)
    truth = dict(zip(names, true_elo, strict=True))
    width = float(np.mean(board.ci_high - board.ci_low))
    rho = float(spearmanr(board.ratings, [truth[p] for p in board.policies])[0])
    place = {p: k for k, p in enumerate(board.policies)}
    ordered = [place[p] for p in names[np.argsort(true_elo)]]
    apart = [
        board.ci_low[upper] > board.ci_high[lower] or board.ci_low[lower] > board.ci_high[upper]
        for lower, upper in zip(ordered, ordered[1:])
    ]
    return width, rho, float(np.mean(apart))


def run(rule: str, true_elo: np.ndarray, checkpoints: list[int], seed: int, args) -> dict[int, tuple]:
    """{checkpoint: `measure`'s figures} of one simulated campaign drawing its pairs by `rule`; checkpoints count
    the battles after the last policy joined (`--newcomer_after` battles among the others before, alike for both)."""
    n = len(true_elo)
    names = np.array([f"policy-{k}" for k in range(n)])
    rng = random.Random(seed)  # the same seed for both rules: the battles before the first refit are alike
    battles = []
    for _ in range(args.newcomer_after):
        a, b = draw_pair(range(n - 1), uniform_weights(n - 1), rng)
        battles.append((a, b, outcome(a, b, true_elo, args.tie_rate, rng)))
    results, weights, before = {}, uniform_weights(n), len(battles)
    while len(battles) - before < checkpoints[-1]:
        if rule == "informative" and (len(battles) - before) % args.refresh == 0:
            weights = informative_weights(wins_matrix(battles, n))
        a, b = draw_pair(range(n), weights, rng)
        battles.append((a, b, outcome(a, b, true_elo, args.tie_rate, rng)))
        if len(battles) - before in checkpoints:
            results[len(battles) - before] = measure(battles, names, true_elo, seed)
    return results


def battles_to_reach(width: float, battles: np.ndarray, widths: np.ndarray) -> tuple[float, bool]:
    """(battles at which the curve `widths` over `battles` reaches `width`, whether that was extrapolated)."""
    x, y = np.log(battles), np.log(widths)
    target = np.log(width)
    for k in range(len(x) - 1):
        if y[k] >= target >= y[k + 1]:
            return float(np.exp(np.interp(target, [y[k + 1], y[k]], [x[k + 1], x[k]]))), False
    # Beyond the curve: intervals narrow as 1 / sqrt(battles) once the fit settles.
    end = -1 if target < y[-1] else 0
    return float(battles[end] * np.exp(2 * (y[end] - target))), True


def plot(path: Path, curves: dict, title: str) -> None:
    """Mean interval width and rank correlation against battles, one line per rule, a band of one standard error."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator, ScalarFormatter

    figure = Figure(figsize=(10, 4), layout="constrained")
    width_axes, rho_axes = figure.subplots(1, 2)
    for rule in RULES:
        x = np.array(curves[rule]["battles"])
        for axes, key in ((width_axes, "width"), (rho_axes, "rho")):
            values = np.array(curves[rule][key])  # (seeds, checkpoints)
            mean, error = values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(len(values))
            axes.plot(x, mean, marker="o", label=rule)
            axes.fill_between(x, mean - error, mean + error, alpha=0.2)
    width_axes.set(xscale="log", yscale="log", xlabel="battles", ylabel="mean 95% interval width (Elo)")
    rho_axes.set(xscale="log", xlabel="battles", ylabel="Spearman correlation with the truth")
    ticks = sorted({b for rule in RULES for b in curves[rule]["battles"]})
    for axes in (width_axes, rho_axes):
        # Log axes label their minor ticks in powers of ten, which overlap at these few points.
        axes.set_xticks(ticks, [str(t) for t in ticks], rotation=45)
        axes.xaxis.set_minor_locator(NullLocator())
        axes.grid(alpha=0.3)
        axes.legend()
    width_axes.yaxis.set_major_formatter(ScalarFormatter())
    width_axes.yaxis.set_minor_formatter(ScalarFormatter())
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main() -> None:
    """Run both rules over the seeds, print the table, write the PNG, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--elo", type=float, nargs="+", default=[1000.0, 1050.0, 1100.0, 1200.0, 1350.0, 1550.0])
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--refresh", type=int, default=50, help="battles between refits of the informative weights")
    parser.add_argument("--tie_rate", type=float, default=0.1)
    parser.add_argument(
        "--newcomer_after", type=int, default=0, help="battles among all but the last policy before it joins"
    )
    parser.add_argument("--uniform_factor", type=float, default=2.0, help="uniform runs on to this x the last")
    parser.add_argument("--png", type=Path, default=Path("outputs/bench/arena_pairing.png"))
    args = parser.parse_args()
    started = time.perf_counter()
    true_elo = np.array(args.elo)
    checkpoints = sorted(args.checkpoints)
    longer = [int(checkpoints[-1] * f) for f in np.linspace(1, args.uniform_factor, 4)[1:]]
    plan = {"uniform": checkpoints + [c for c in longer if c > checkpoints[-1]], "informative": checkpoints}
    curves = {}
    for rule in RULES:
        runs = [run(rule, true_elo, plan[rule], seed, args) for seed in range(args.seeds)]
        curves[rule] = {
            "battles": plan[rule],
            "width": [[r[c][0] for c in plan[rule]] for r in runs],
            "rho": [[r[c][1] for c in plan[rule]] for r in runs],
            "apart": [[r[c][2] for c in plan[rule]] for r in runs],
        }
    keys = ("width", "rho", "apart")
    mean = {rule: {k: np.mean(curves[rule][k], axis=0) for k in keys} for rule in RULES}
    # Standard error over seeds: the seeds' campaigns are independent, the two rules' too once their pairs differ.
    error = {rule: np.std(curves[rule]["width"], axis=0, ddof=1) / np.sqrt(args.seeds) for rule in RULES}
    uniform_battles = np.array(plan["uniform"])
    joins = f"; the last joins after {args.newcomer_after} battles (not counted below)" if args.newcomer_after else ""
    print(
        f"{len(true_elo)} policies, Elo {', '.join(f'{e:g}' for e in true_elo)}{joins}; {args.seeds} seeds; refit every"
    )
    print(f"{args.refresh} battles. width: mean 95% bootstrap interval (Elo) over policies and seeds, +- its")
    print("standard error; rho: Spearman with the truth; apart: share of true neighbours whose intervals do not")
    print("overlap; uniform needs: battles uniform takes to reach informative's width\n")
    print(
        f"{'battles':>7}  {'width uniform':>14}  {'width informative':>17}  {'ratio':>5}  {'rho unif':>8}  "
        f"{'rho inf':>7}  {'apart unif':>10}  {'apart inf':>9}  {'uniform needs':>13}"
    )
    rows = []
    for k, battles in enumerate(checkpoints):
        wu, wi = mean["uniform"]["width"][k], mean["informative"]["width"][k]
        needs, extrapolated = battles_to_reach(wi, uniform_battles, mean["uniform"]["width"])
        rows.append(
            {
                "battles": battles,
                "width_uniform": round(float(wu), 1),
                "width_informative": round(float(wi), 1),
                "width_ratio": round(float(wi / wu), 3),
                "spearman_uniform": round(float(mean["uniform"]["rho"][k]), 3),
                "spearman_informative": round(float(mean["informative"]["rho"][k]), 3),
                "apart_uniform": round(float(mean["uniform"]["apart"][k]), 3),
                "apart_informative": round(float(mean["informative"]["apart"][k]), 3),
                "uniform_battles_for_same_width": round(needs),
                "battles_ratio": round(needs / battles, 3),
                "extrapolated": extrapolated,
            }
        )
        row = rows[-1]
        print(
            f"{battles:>7}  {wu:>7.1f} +-{error['uniform'][k]:>4.1f}  {wi:>10.1f} +-{error['informative'][k]:>4.1f}  "
            f"{wi / wu:>5.3f}  {row['spearman_uniform']:>8.3f}  {row['spearman_informative']:>7.3f}  "
            f"{row['apart_uniform']:>10.2f}  {row['apart_informative']:>9.2f}  "
            f"{round(needs):>6} ({needs / battles:.2f}x)" + (" extrapolated" if extrapolated else "")
        )
    extra = [(b, w) for b, w in zip(plan["uniform"], mean["uniform"]["width"], strict=True) if b > checkpoints[-1]]
    if extra:
        print("uniform further on: " + ", ".join(f"{b} battles {w:.1f}" for b, w in extra))
    elo = ", ".join(f"{e:g}" for e in true_elo)
    joined = f", the last joining after {args.newcomer_after} battles" if args.newcomer_after else ""
    plot(args.png, curves, f"Arena pairing: {len(true_elo)} policies (Elo {elo}){joined}, {args.seeds} seeds")
    print(f"plot: {args.png}")
    last = rows[-1]
    print(
        json.dumps(
            {
                "bench": "arena_pairing",
                "elo": args.elo,
                "seeds": args.seeds,
                "refresh": args.refresh,
                "newcomer_after": args.newcomer_after,
                "rows": rows,
                "battles_ratio": last["battles_ratio"],
                "width_ratio_at_equal_battles": last["width_ratio"],
                "png": str(args.png),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
