"""One trained reward model on several evaluation sets, in one table: does its accuracy carry across domains?

`plumb reward eval --eval_sets a,b,c` scores each set exactly as `plumb reward eval --dataset_name a`
would (same loader, scoring and report), so a row of the table is the single-set evaluation of that
set. Each set is any dataset spec Plumb's loader takes (a JSONL/JSON/Parquet/CSV file, `builtin:NAME`,
a folder, a Hub id), optionally `SPEC@SPLIT` (default split: `--dataset_split`); rankings count as
their pairs. Writes eval_sets_report.json (every set's full report) and prints the table.

    plumb reward eval --model_name_or_path outputs/reward-demo --eval_sets builtin:prefs@test,hh.jsonl.gz
"""

import json
import logging
import re
from pathlib import Path

import numpy as np

from plumb.config import ConfigError
from reward import evaluate
from reward.config import EvalArguments
from reward.score import load_reward_model, model_paths, trained_max_length

logger = logging.getLogger(__name__)

SETS_REPORT_FILE = "eval_sets_report.json"
SPLIT_NAME = re.compile(r"[\w.-]+")


def parse_eval_sets(spec: str, default_split: str) -> list[tuple[str, str, str]]:
    """(name as given, source, split) of each comma-separated set; `SOURCE@SPLIT` picks a split.

    A name that is itself an existing path keeps its `@` (a file may be called `data@v2.jsonl`).
    """
    sets = []
    for part in spec.split(","):
        name = part.strip()
        if not name:
            continue
        source, at, split = name.rpartition("@")
        if not (at and source and SPLIT_NAME.fullmatch(split)) or Path(name).expanduser().exists():
            source, split = name, default_split
        sets.append((name, source, split))
    if not sets:
        raise ConfigError(f"eval_sets: no dataset named in {spec!r} (give comma-separated dataset specs)")
    names = [name for name, _, _ in sets]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"eval_sets: {', '.join(repeated)} named more than once")
    return sets


def main(args: EvalArguments) -> dict:
    """Evaluate the model on every set of `args.eval_sets`; writes and returns {model, max_length, sets: [reports]}."""
    sets = parse_eval_sets(args.eval_sets, args.dataset_split)
    # Every set is loaded and checked before the model is: a bad file fails in a second, not after scoring the others.
    data = [evaluate.load_eval_pairs(source, split) for _, source, split in sets]
    paths = model_paths(args.model_name_or_path)
    reward_models = [load_reward_model(path) for path in paths]
    max_length = args.max_length or trained_max_length(paths[0])
    reports = []
    for (name, source, split), pairs in zip(sets, data):
        logger.info("Scoring %s: %d pairs", name, len(pairs))
        report = evaluate.evaluate_pairs(reward_models, pairs, args, max_length=max_length)
        reports.append({"name": name, "dataset": f"{source} [{split}]", **report})
    result = {"model": args.model_name_or_path, "max_length": max_length, "sets": reports}
    output_dir = Path(args.output_dir or paths[0])
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / SETS_REPORT_FILE).write_text(json.dumps(result, indent=2))
    logger.info("Wrote %s to %s", SETS_REPORT_FILE, output_dir)
    return result


def table_rows(result: dict) -> list[dict]:
    """One flat row per set: name, pairs, accuracy and its 95% interval, ECE, the longer-is-better baseline."""
    return [
        {
            "set": report["name"],
            "pairs": report["pairs"],
            "accuracy": report["accuracy"],
            "accuracy_ci95": report["accuracy_ci95"],
            "ece": report["ece"],
            "length_baseline_accuracy": report["length_baseline_accuracy"],
        }
        for report in result["sets"]
    ]


def format_table(result: dict) -> str:
    """The sets side by side: pairs, accuracy (95% bootstrap CI), ECE and the longer-is-better baseline."""
    rows = table_rows(result)
    width = max(len("set"), *(len(row["set"]) for row in rows))
    header = f"  {'set':<{width}}  {'pairs':>6}  {'accuracy':>8}  {'95% CI':<11}  {'ECE':>5}  {'longer wins':>11}"
    lines = [
        f"Reward model {result['model']} on {len(rows)} evaluation sets (max_length {result['max_length']})",
        header,
    ]
    for row in rows:
        low, high = row["accuracy_ci95"]
        lines.append(
            f"  {row['set']:<{width}}  {row['pairs']:>6}  {row['accuracy']:>8.3f}  {low:.3f}-{high:.3f}  "
            f"{row['ece']:>5.3f}  {row['length_baseline_accuracy']:>11.3f}"
        )
    accuracies = [row["accuracy"] for row in rows]
    lines.append(
        f"  mean over sets: accuracy {np.mean(accuracies):.3f}, lowest {min(accuracies):.3f} "
        f"({rows[int(np.argmin(accuracies))]['set']})"
    )
    return "\n".join(lines)


def gate_failures(result: dict, *, min_accuracy: float | None, max_ece: float | None) -> list[str]:
    """Why the model fails the gate on any set, each reason naming its set (empty when every set passes)."""
    return [
        f"{report['name']}: {failure}"
        for report in result["sets"]
        for failure in evaluate.gate_failures(report, min_accuracy=min_accuracy, max_ece=max_ece)
    ]
