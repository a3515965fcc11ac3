"""How far to trust a reward model: held-out accuracy, calibration, length bias and the raters' own ceiling.

Writes eval_report.json and reliability.png, prints a short table, and with
`--min-accuracy` / `--max-ece` exits with status 1 when the model falls short, so a
pipeline stops before RL climbs a bad reward.

    plumb reward eval --model_name_or_path outputs/reward-demo --dataset_name builtin:prefs --min-accuracy 0.7

`--eval_sets a,b,c` evaluates one model on several datasets in one table (reward/eval_sets.py);
`--kfold K` cross-validates a training recipe instead (reward/crossval.py, also `plumb reward cv`).
"""

import json
import logging
from pathlib import Path

import numpy as np

from plumb.config import ConfigError, parse_config, peek_value
from plumb.data import DataError, load_contract, ranking_to_pairs, to_conversational
from reward import metrics as m
from reward.config import EvalArguments
from reward.encoding import response_text
from reward.score import load_reward_model, member_scores, model_paths, trained_max_length

logger = logging.getLogger(__name__)

REPORT_FILE = "eval_report.json"
DIAGRAM_FILE = "reliability.png"
EXIT_GATE_FAILED = 1
GROUP_KEYS = ("category", "source", "task_type", "subset")


def config_types(argv: list[str] | None = None) -> tuple:
    """The dataclasses a `plumb reward eval` config fills: with `kfold` set, those of `plumb reward cv`."""
    if argv is not None and cross_validating(argv):
        from reward import crossval

        return crossval.config_types()
    return (EvalArguments,)


def cross_validating(argv: list[str]) -> bool:
    """True when `--kfold` (flag or config key) asks for cross-validation of a training recipe."""
    # Peeked, not parsed: cross-validation takes the training keys, which the eval dataclass does not know.
    return peek_value(argv, "kfold") is not None


def cli(argv: list[str], *, prog: str) -> int:
    """Parse flags, evaluate, print the table; the exit status is 1 when the gate fails."""
    if cross_validating(argv):
        from reward import crossval

        return crossval.cli(argv, prog=prog)
    (args,) = parse_config(config_types(), argv, prog=prog)
    report = main(args)
    if "sets" in report:
        from reward import eval_sets

        print(eval_sets.format_table(report))
        failures = eval_sets.gate_failures(report, min_accuracy=args.min_accuracy, max_ece=args.max_ece)
    else:
        print(format_table(report))
        failures = gate_failures(report, min_accuracy=args.min_accuracy, max_ece=args.max_ece)
    for failure in failures:
        print(f"GATE FAILED: {failure}")
    return EXIT_GATE_FAILED if failures else 0


def main(args: EvalArguments) -> dict:
    """Score the held-out pairs, write the JSON report and the reliability diagram; returns the report.

    With `eval_sets`, the report of every set instead (reward/eval_sets.py).
    """
    if args.kfold is not None:
        raise ConfigError(
            "kfold trains models, so it takes the training keys: run `plumb reward cv` (or `plumb reward eval "
            "--kfold K` on the command line), or call reward.crossval.main"
        )
    if args.eval_sets:
        from reward import eval_sets

        return eval_sets.main(args)
    paths = model_paths(args.model_name_or_path)
    reward_models = [load_reward_model(path) for path in paths]
    pairs = load_eval_pairs(args.dataset_name, args.dataset_split)
    max_length = args.max_length or trained_max_length(paths[0])
    report = evaluate_pairs(reward_models, pairs, args, max_length=max_length)
    report.update(
        model=args.model_name_or_path, dataset=f"{args.dataset_name} [{args.dataset_split}]", max_length=max_length
    )
    output_dir = Path(args.output_dir or paths[0])
    write_report(report, output_dir)
    return report


def load_eval_pairs(source: str, split: str):
    """A split's pairs as message lists: pairwise rows, or rankings expanded to their pairs (ties give none)."""
    data = load_contract(source, ("pairwise", "ranking"), split)
    if "completions" in data.column_names:
        data = ranking_to_pairs(data)
        if not len(data):
            raise DataError(f"{source} [{split}]: the rankings are all ties, so they give no pairs to evaluate")
    return to_conversational(data)


def evaluate_pairs(reward_models, pairs, args: EvalArguments, *, max_length: int) -> dict:
    """Score `pairs` with the models (their mean reward) and return the full report, as the eval flags ask."""
    chosen, rejected = score_pairs(reward_models, pairs, max_length=max_length, batch_size=args.batch_size)
    return evaluate_scores(
        pairs, chosen, rejected, bootstrap_samples=args.bootstrap_samples, num_bins=args.num_bins, seed=args.seed
    )


def score_pairs(reward_models, pairs, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Mean rewards of the chosen and the rejected conversations over the models, each (n,)."""
    chosen, rejected = (
        member_scores(reward_models, [p + r for p, r in zip(pairs["prompt"], pairs[side])], **kwargs).mean(axis=0)
        for side in ("chosen", "rejected")
    )
    return chosen, rejected


def evaluate_scores(pairs, chosen, rejected, *, bootstrap_samples=1000, num_bins=10, seed=0) -> dict:
    """The full report for rewards of chosen and rejected (each (n,)) on `pairs` (conversational pairwise data)."""
    correct = m.pair_correct(chosen, rejected)
    probability = m.preference_probability(chosen, rejected)
    chosen_length = np.array([len(response_text(r)) for r in pairs["chosen"]])
    rejected_length = np.array([len(response_text(r)) for r in pairs["rejected"]])
    low, high = m.bootstrap_ci(correct, samples=bootstrap_samples, seed=seed)
    report = {
        "pairs": len(correct),
        "accuracy": float(correct.mean()),
        "accuracy_ci95": [low, high],
        "ece": m.expected_calibration_error(probability, num_bins=num_bins),
        "length_baseline_accuracy": m.longer_is_better_accuracy(chosen_length, rejected_length),
        "reward_length_spearman": m.spearman(
            np.concatenate([chosen, rejected]), np.concatenate([chosen_length, rejected_length])
        ),
        "mean_margin": float(np.mean(chosen - rejected)),
        "reliability": m.reliability_bins(probability, num_bins=num_bins),
    }
    groups = pair_groups(pairs)
    if groups is not None:
        report["by_group"] = m.grouped_accuracy(correct, groups)
    report.update(agreement_report(pairs, correct))
    return report


def _meta(pairs) -> list[dict]:
    return [meta or {} for meta in pairs["meta"]] if "meta" in pairs.column_names else [{}] * len(pairs)


def pair_groups(pairs) -> list[str] | None:
    """Each pair's source or category, from a column or from `meta`; None when the data carries none."""
    metas = _meta(pairs)
    for key in GROUP_KEYS:
        if key in pairs.column_names:
            return [str(value) for value in pairs[key]]
        if any(key in meta for meta in metas):
            return [str(meta.get(key, "unknown")) for meta in metas]
    return None


def rater_count(meta: dict) -> int:
    """How many raters judged the item: meta `judgments` (as `plumb collect export` writes it), else `raters`."""
    if isinstance(meta.get("judgments"), int):
        return meta["judgments"]
    raters = meta.get("raters", meta.get("rater_ids"))
    if isinstance(raters, (list, tuple)):
        return len(raters)
    return int(raters) if isinstance(raters, (int, float)) else 1


def agreement_report(pairs, correct) -> dict:
    """Accuracy by the raters' agreement level and, over pairs with several raters, their agreement (the ceiling)."""
    metas = _meta(pairs)
    known = [i for i, meta in enumerate(metas) if isinstance(meta.get("agreement"), (int, float))]
    if not known:
        return {}
    agreement = [float(metas[i]["agreement"]) for i in known]
    report = {"by_agreement": m.grouped_accuracy(np.asarray(correct)[known], [m.agreement_level(a) for a in agreement])}
    several = [a for i, a in zip(known, agreement) if rater_count(metas[i]) > 1]
    if several:
        report["agreement_ceiling"] = float(np.mean(several))
        report["agreement_ceiling_pairs"] = len(several)
        report["accuracy_on_ceiling_pairs"] = float(np.mean([correct[i] for i in known if rater_count(metas[i]) > 1]))
    return report


def gate_failures(report: dict, *, min_accuracy: float | None, max_ece: float | None) -> list[str]:
    """Why the model fails the gate (empty when it passes or no gate is set)."""
    failures = []
    if min_accuracy is not None and not report["accuracy"] >= min_accuracy:
        failures.append(f"accuracy {report['accuracy']:.3f} is below --min-accuracy {min_accuracy}")
    if max_ece is not None and not report["ece"] <= max_ece:
        failures.append(f"ECE {report['ece']:.3f} is above --max-ece {max_ece}")
    return failures


def format_table(report: dict) -> str:
    """A short plain-text table: the model beside the longer-is-better baseline and the raters' ceiling."""
    low, high = report["accuracy_ci95"]
    ceiling = report.get("agreement_ceiling")
    lines = [
        f"Reward model evaluation on {report.get('dataset', 'held-out pairs')} ({report['pairs']} pairs)",
        f"  {'accuracy':<28}{report['accuracy']:.3f}  (95% CI {low:.3f}-{high:.3f})",
        f"  {'longer-is-better baseline':<28}{report['length_baseline_accuracy']:.3f}",
        f"  {'raters agreement (ceiling)':<28}" + (f"{ceiling:.3f}" if ceiling is not None else "n/a (one rater)"),
        f"  {'ECE (10 bins)' if len(report['reliability']) == 10 else 'ECE':<28}{report['ece']:.3f}",
        f"  {'reward-length Spearman':<28}{report['reward_length_spearman']:.3f}",
    ]
    for title, key in (("by group", "by_group"), ("by raters' agreement", "by_agreement")):
        for label, row in report.get(key, {}).items():
            lines.append(f"  {title + ': ' + label:<28}{row['accuracy']:.3f}  ({row['pairs']} pairs)")
    return "\n".join(lines)


def write_report(report: dict, output_dir: Path) -> None:
    """Write eval_report.json and reliability.png into `output_dir`."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / REPORT_FILE).write_text(json.dumps(report, indent=2))
    plot_reliability(report["reliability"], output_dir / DIAGRAM_FILE, accuracy=report["accuracy"], ece=report["ece"])
    logger.info("Wrote %s and %s to %s", REPORT_FILE, DIAGRAM_FILE, output_dir)


def plot_reliability(bins: list[dict], path: Path, *, accuracy: float, ece: float) -> None:
    """The reliability diagram: accuracy per confidence bin against the diagonal of perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    filled = [b for b in bins if b["count"]]
    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0.5, 1.0], [0.5, 1.0], linestyle="--", color="grey", label="perfectly calibrated")
    width = bins[0]["high"] - bins[0]["low"]
    axis.bar(
        [b["low"] for b in filled],
        [b["accuracy"] for b in filled],
        width=width,
        align="edge",
        edgecolor="black",
        alpha=0.7,
        label="reward model",
    )
    for b in filled:
        axis.annotate(str(b["count"]), (b["low"] + width / 2, b["accuracy"]), ha="center", va="bottom", fontsize=7)
    axis.set(
        xlim=(0.5, 1.0),
        ylim=(0.0, 1.05),
        xlabel="confidence  max(p, 1-p),  p = sigmoid(r_chosen - r_rejected)",
        ylabel="accuracy in bin",
        title=f"Reliability: accuracy {accuracy:.3f}, ECE {ece:.3f}",
    )
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
