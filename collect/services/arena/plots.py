"""The leaderboard as pictures: ratings with their bootstrap intervals, and the win-rate matrix, as PNG files.

Plain matplotlib (the object API, which draws with Agg and touches no global backend):
`plumb collect leaderboard` writes both, the app's Campaign tab shows the ratings.
"""

from pathlib import Path

import numpy as np

from collect.services.arena.ratings import Leaderboard


def plot_ratings(board: Leaderboard, path: Path) -> Path:
    """A PNG of each policy's rating (best at the top) with its bootstrap interval."""
    from matplotlib.figure import Figure

    n = len(board.policies)
    figure = Figure(figsize=(7, 1.2 + 0.35 * n), layout="constrained")
    axes = figure.add_subplot()
    rows = np.arange(n)[::-1]
    has_interval = ~np.isnan(board.ci_low)
    errors = np.where(has_interval, [board.ratings - board.ci_low, board.ci_high - board.ratings], 0.0)
    axes.errorbar(board.ratings, rows, xerr=errors, fmt="o", capsize=3)
    axes.set_yticks(rows, board.policies)
    axes.set_xlabel(f"rating (Elo scale), {board.confidence:.0%} bootstrap interval")
    axes.set_title(f"Bradley-Terry leaderboard: {board.battles} battles")
    axes.grid(axis="x", alpha=0.3)
    figure.savefig(path, dpi=120)
    return path


def plot_win_rates(board: Leaderboard, path: Path) -> Path:
    """A PNG heat map of the share of battles the row policy won against the column policy (ties half)."""
    from matplotlib.figure import Figure

    n = len(board.policies)
    size = 2.5 + 0.5 * n
    figure = Figure(figsize=(size, size * 0.85), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(board.win_rates, cmap="RdBu", vmin=0, vmax=1)
    axes.set_xticks(range(n), board.policies, rotation=45, ha="right")
    axes.set_yticks(range(n), board.policies)
    if n <= 20:  # numbers in the cells stay legible up to about 20 policies
        for (i, j), rate in np.ndenumerate(board.win_rates):
            if not np.isnan(rate):
                axes.text(j, i, f"{rate:.2f}", ha="center", va="center", fontsize=7)
    axes.set_xlabel("opponent")
    axes.set_ylabel("policy")
    figure.colorbar(image, ax=axes, label="win rate (ties half)")
    figure.savefig(path, dpi=120)
    return path
