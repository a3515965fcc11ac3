"""`plumb loop report RUN_DIR`: one page across rounds (Markdown with PNG plots) and report.json for scripts.

Per round: labels (human and simulated), the raters' agreement, the reward model's held-out
accuracy and calibration, the win rate against SFT under the judge with its 95% interval,
also among prompts whose two answers are of similar length (a gain bought by length alone
shows there), the win rate against the previous round, KL to the SFT policy, mean length,
and the wall time of every stage.

    plumb loop report outputs/loop-demo
"""

import argparse
import json
from pathlib import Path

from loop.manifest import STAGES, read_manifest, result_of, stage_key

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


def cli(argv: list[str], *, prog: str) -> int:
    """Parse the run directory, then write the report."""
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", help="the run directory of `plumb loop run` (its output_dir)")
    path = write_report(parser.parse_args(argv).run_dir)
    print(path.read_text())
    return 0


def round_rows(manifest: dict) -> list[dict]:
    """The figures of every round that has at least one finished stage, from the manifest."""
    rows = []
    number = 1
    while any(result_of(manifest, number, stage) is not None for stage in STAGES):
        rows.append(round_figures(manifest, number))
        number += 1
    return rows


def round_figures(manifest: dict, number: int) -> dict:
    """One round's figures; a stage that has not finished leaves its figures None."""

    def get(stage, key, default=None):
        result = result_of(manifest, number, stage)
        return default if result is None else result.get(key, default)

    by_kind = get("export", "labels_by_kind", {}) or {}
    agreement = get("export", "agreement") or {}
    seconds = {stage: manifest["stages"].get(stage_key(number, stage), {}).get("seconds") for stage in STAGES}
    return {
        "round": number,
        "policy": get("align", "policy"),
        "labels": get("export", "labels"),
        "labels_human": by_kind.get("human", 0),
        "labels_simulated": by_kind.get("simulated", 0),
        "pairs": get("export", "round_pairs"),
        "agreement": agreement.get("raw_agreement"),
        "krippendorff_alpha": agreement.get("krippendorff_alpha_nominal"),
        "reward_accuracy": get("reward", "accuracy"),
        "reward_accuracy_ci95": get("reward", "accuracy_ci95"),
        "reward_ece": get("reward", "ece"),
        "win_rate_vs_sft": get("eval", "win_rate"),
        "win_rate_vs_sft_ci95": get("eval", "win_rate_ci"),
        "win_rate_vs_sft_length_matched": get("eval", "win_rate_length_matched"),
        "length_matched_prompts": get("eval", "length_matched_prompts"),
        "win_rate_vs_previous": get("eval", "win_rate_vs_previous"),
        "win_rate_vs_previous_ci95": get("eval", "win_rate_vs_previous_ci"),
        "eval_prompts": get("eval", "prompts"),
        "judge": get("eval", "judge"),
        "kl": get("eval", "kl_to_reference"),
        "mean_length": get("eval", "policy_mean_length"),
        "sft_mean_length": get("eval", "reference_mean_length"),
        "seconds": round(sum(s for s in seconds.values() if s), 1),
        "stage_seconds": seconds,
    }


def write_report(run_dir) -> Path:
    """Write report.json, report.md and the plots into the run directory; returns the Markdown file."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    rows = round_rows(manifest)
    (run_dir / REPORT_JSON).write_text(json.dumps({"rounds": rows, "stopped": manifest.get("stopped")}, indent=2))
    plots = plot_rounds(rows, run_dir) if rows else []
    path = run_dir / REPORT_MD
    path.write_text(markdown(rows, manifest.get("stopped"), plots))
    return path


def _value(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _interval(pair) -> str:
    return "–" if not pair else f"{pair[0]:.2f}–{pair[1]:.2f}"


def markdown(rows: list[dict], stopped: str | None, plots: list[str]) -> str:
    """The report page: a table with a row per round, the judge, what was simulated, and the plots."""
    lines = ["# The loop, round by round", ""]
    simulated = sum(row["labels_simulated"] or 0 for row in rows)
    human = sum(row["labels_human"] or 0 for row in rows)
    lines.append(
        f"Labels: {human} from people, {simulated} from simulated raters"
        + (" (simulated raters follow an oracle with noise; see the run's config)." if simulated else ".")
    )
    judges = {row["judge"] for row in rows if row["judge"]}
    if judges:
        lines.append(f"Judge of the win rates (not used in training): {', '.join(sorted(judges))}.")
    lines += [
        "",
        "| round | labels | agreement | reward acc. | ECE | win vs SFT (95% CI) | win, similar length (n) "
        "| win vs previous | KL (nats) | mean length (SFT) | minutes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['round']} | {row['labels'] if row['labels'] is not None else '–'} | {_value(row['agreement'], 2)} "
            f"| {_value(row['reward_accuracy'])} | {_value(row['reward_ece'])} "
            f"| {_value(row['win_rate_vs_sft'])} ({_interval(row['win_rate_vs_sft_ci95'])}) "
            f"| {_value(row['win_rate_vs_sft_length_matched'])} ({row['length_matched_prompts'] or 0}) "
            f"| {_value(row['win_rate_vs_previous'])} | {_value(row['kl'], 2)} "
            f"| {_value(row['mean_length'], 0)} ({_value(row['sft_mean_length'], 0)}) | {row['seconds'] / 60:.1f} |"
        )
    lines += [
        "",
        'Win rates count ties as half; "similar length" keeps the prompts whose two answers differ by at most '
        "20% in length. Mean length is in characters. Stage times (s): ",
    ]
    for row in rows:
        lines.append(
            f"- round {row['round']}: "
            + ", ".join(f"{stage} {_value(sec, 0)}" for stage, sec in row["stage_seconds"].items())
        )
    if stopped:
        lines += ["", f"**Stopped:** {stopped}"]
    lines += [""] + [f"![{name}]({name})" for name in plots]
    return "\n".join(lines) + "\n"


def plot_rounds(rows: list[dict], run_dir: Path) -> list[str]:
    """Two PNGs: win rates with intervals and reward accuracy per round; KL and mean length per round."""
    from matplotlib.figure import Figure

    rounds = [row["round"] for row in rows]
    figure = Figure(figsize=(8, 3.6), layout="constrained")
    left, right = figure.subplots(1, 2)
    for key, label, marker in (
        ("win_rate_vs_sft", "win rate vs SFT", "o"),
        ("win_rate_vs_sft_length_matched", "… similar length", "s"),
        ("win_rate_vs_previous", "win rate vs previous round", "^"),
        ("reward_accuracy", "reward model accuracy", "d"),
    ):
        points = [(row["round"], row[key], row.get(f"{key}_ci95")) for row in rows if row[key] is not None]
        if not points:
            continue
        x, y, ci = zip(*points)
        errors = [[v - c[0] if c else 0 for v, c in zip(y, ci)], [c[1] - v if c else 0 for v, c in zip(y, ci)]]
        left.errorbar(x, y, yerr=errors, marker=marker, capsize=4, label=label)
    left.axhline(0.5, color="grey", linestyle=":", linewidth=1)
    left.set(xlabel="round", ylabel="share", ylim=(0, 1), xticks=rounds, title="Did the loop make the policy better?")
    left.legend(fontsize=7, loc="lower right")
    kl = [(row["round"], row["kl"]) for row in rows if row["kl"] is not None]
    if kl:
        right.plot(*zip(*kl), marker="o", color="tab:red", label="KL to SFT (nats)")
        right.set_ylim(0, max(value for _, value in kl) * 1.3 or 1)
        right.legend(fontsize=7, loc="upper left")
    right.set(xlabel="round", ylabel="KL (nats)", xticks=rounds, title="Cost: KL and length")
    lengths = [(row["round"], row["mean_length"], row["sft_mean_length"]) for row in rows if row["mean_length"]]
    if lengths:
        twin = right.twinx()
        x, policy, sft = zip(*lengths)
        twin.plot(x, policy, marker="s", color="tab:blue", label="mean length")
        twin.plot(x, sft, linestyle="--", color="tab:blue", alpha=0.5, label="SFT mean length")
        twin.set_ylabel("characters")
        twin.set_ylim(0, max(max(policy), max(sft)) * 1.3)  # from zero: a few characters must not look like a lot
        twin.legend(fontsize=7, loc="upper right")
    figure.savefig(run_dir / "report.png", dpi=120)
    return ["report.png"]
