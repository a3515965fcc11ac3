"""The campaign's progress as pictures: judgments over time, judgments per rater and the drift shares over
time, as PNG files.

Plain matplotlib (the object API, which draws with Agg and touches no global backend), so
tests call these directly; the campaign tab shows the files with `gr.Image(type="filepath")`.
"""

from datetime import datetime, timedelta
from pathlib import Path

MIN_SPAN = timedelta(minutes=1)  # the narrowest time axis: a first burst of judgments still reads as a curve


def cumulative(times: list[datetime]) -> tuple[list[datetime], list[int]]:
    """(times, judgments so far) for a step curve: from 0 at the first judgment's time, one step per judgment."""
    ordered = sorted(times)
    return [ordered[0], *ordered], list(range(len(ordered) + 1))


def plot_judgments_over_time(times: list[datetime], path: Path) -> Path | None:
    """A PNG of live judgments so far against time (UTC), one step per judgment; None with no judgments."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    if not times:
        return None
    xs, ys = cumulative(times)
    figure = Figure(figsize=(7, 3), layout="constrained")
    axes = figure.add_subplot()
    axes.step(xs, ys, where="post")
    span = max(xs[-1] - xs[0], MIN_SPAN)
    axes.set_xlim(xs[0] - span * 0.05, xs[0] + span * 1.05)
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.set_ylim(bottom=0)
    axes.set_ylabel("live judgments")
    axes.set_xlabel("time (UTC)")
    axes.set_title(f"Judgments over time: {ys[-1]} in all")
    axes.grid(alpha=0.3)
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


def plot_drift_over_time(blocks: list[dict], path: Path, *, title: str) -> Path | None:
    """A PNG of the drift shares per block of judgments (`drift.drift_over_time`) at each block's last judgment:
    tie and both-bad rates, the left-side share of decided judgments (0.5 is no position bias) and, where there
    is a reward model, the share that chose its candidate; None with no blocks."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    if not blocks:
        return None
    times = [b["until"] for b in blocks]
    lines = {
        "tie rate": [b["ties"] / b["judgments"] for b in blocks],
        "both bad": [b["both_bad"] / b["judgments"] for b in blocks],
        "left side chosen": [b["left_won"] / b["decided"] if b["decided"] else None for b in blocks],
    }
    if blocks[0]["model_judgments"] is not None:
        lines["agrees with reward model"] = [
            b["model_agreed"] / b["model_judgments"] if b["model_judgments"] else None for b in blocks
        ]
    figure = Figure(figsize=(7, 3), layout="constrained")
    axes = figure.add_subplot()
    for name, values in lines.items():
        axes.plot(times, [float("nan") if v is None else v for v in values], marker="o", label=name)
    axes.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.set_ylim(0, 1)
    axes.set_ylabel("share of the block")
    axes.set_xlabel("time of the block's last judgment (UTC)")
    axes.set_title(title)
    axes.legend(fontsize=7, loc="upper left")
    axes.grid(alpha=0.3)
    figure.savefig(path, dpi=110)
    return Path(path)
