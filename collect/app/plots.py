"""The campaign's progress as pictures: judgments over time and judgments per rater, as PNG files.

Plain matplotlib (the object API, which draws with Agg and touches no global backend), so
tests call these directly; the campaign tab shows the files with `gr.Image(type="filepath")`.
"""

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

HOURLY_UP_TO = timedelta(days=2)  # a longer span reads better by day


def time_bins(times: list[datetime]) -> tuple[list[datetime], list[int], str]:
    """(bin starts, cumulative judgments at each bin's end, "hour" or "day") for judgment times, oldest first."""
    unit = "hour" if max(times) - min(times) <= HOURLY_UP_TO else "day"
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)

    def floor(at: datetime) -> datetime:
        at = at.replace(minute=0, second=0, microsecond=0)
        return at if unit == "hour" else at.replace(hour=0)

    counts = Counter(floor(at) for at in times)
    starts, totals, total, start = [], [], 0, floor(min(times))
    while start <= floor(max(times)):  # empty bins too, so the line stays flat where nobody worked
        total += counts.get(start, 0)
        starts.append(start)
        totals.append(total)
        start += step
    return starts, totals, unit


def plot_judgments_over_time(times: list[datetime], path: Path) -> Path | None:
    """A PNG of cumulative live judgments by hour or day (whichever the span needs); None with no judgments."""
    from matplotlib.figure import Figure

    if not times:
        return None
    starts, totals, unit = time_bins(times)
    figure = Figure(figsize=(7, 3), layout="constrained")
    axes = figure.add_subplot()
    axes.step(starts, totals, where="post", marker="o", markersize=3)
    axes.set_ylim(bottom=0)
    axes.set_ylabel("live judgments")
    axes.set_xlabel(f"time (UTC), by {unit}")
    axes.set_title(f"Judgments over time: {totals[-1]} in all")
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    figure.savefig(path, dpi=110)
    return Path(path)


def plot_judgments_per_rater(per_rater: dict[str, int], path: Path) -> Path | None:
    """A PNG bar per rater of their live judgments, most first; None when nobody has judged."""
    from matplotlib.figure import Figure

    if not per_rater:
        return None
    ranked = sorted(per_rater.items(), key=lambda pair: (-pair[1], pair[0]))
    figure = Figure(figsize=(7, 1.2 + 0.3 * len(ranked)), layout="constrained")
    axes = figure.add_subplot()
    rows = list(range(len(ranked)))[::-1]
    axes.barh(rows, [count for _, count in ranked])
    axes.set_yticks(rows, [name for name, _ in ranked])
    axes.set_xlabel("live judgments")
    axes.set_title("Judgments per rater")
    axes.grid(axis="x", alpha=0.3)
    figure.savefig(path, dpi=110)
    return Path(path)
