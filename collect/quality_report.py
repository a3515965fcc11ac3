"""`plumb collect quality`: how far the raters agree, which raters to trust, and one label per item.

Reads judgments (rater, item, left, right, choice, optional strength, lengths, seconds,
gold; see collect/quality/judgments.py) from a JSONL/Parquet/CSV file, prints the
agreement figures and the per-rater table, and writes quality.json, consensus.jsonl
(one aggregated label per item, contested items marked) and the resolved config.

    plumb collect quality --config configs/collect/quality-demo.yaml
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from collect.quality.aggregate import (
    contested_items,
    dawid_skene,
    majority_vote,
    model_agreement,
    reliability_weights,
)
from collect.quality.agreement import agreement_summary
from collect.quality.judgments import judgment_table, label_matrix, preference
from collect.quality.raters import rater_report
from plumb.config import parse_config, save_resolved_config
from plumb.data import DataError, load_records

logger = logging.getLogger(__name__)


@dataclass
class QualityArguments:
    """Where the judgments are, the thresholds of the rater checks, and how to aggregate."""

    judgments: str = field(
        default="builtin:demo-judgments",
        metadata={"help": "Judgments: builtin:NAME, a JSONL/Parquet/CSV file or a saved dataset directory."},
    )
    split: str = field(default="train", metadata={"help": "Split to read when `judgments` has several."})
    output_dir: str = field(default="outputs/quality", metadata={"help": "Where quality.json and consensus.jsonl go."})
    model_rater: str | None = field(
        default=None,
        metadata={
            "help": "Rater id of a reward model's pre-labels: left out of the human agreement and compared "
            "to the consensus."
        },
    )
    min_shared_items: int = field(
        default=10, metadata={"help": "Shared items a pair of raters needs for Cohen's kappa."}
    )
    min_gold: int = field(default=5, metadata={"help": "Gold items a rater needs before the gold check can flag them."})
    gold_threshold: float = field(default=0.7, metadata={"help": "Flag raters below this accuracy on gold items."})
    min_repeats: int = field(
        default=3, metadata={"help": "Repeats a rater needs before the consistency check can flag them."}
    )
    consistency_threshold: float = field(
        default=0.7, metadata={"help": "Flag raters who repeat their own earlier verdict less often than this."}
    )
    speed_ratio: float = field(
        default=0.3,
        metadata={
            "help": "A rater whose median time is under this share of everyone's median (or over its inverse) "
            "is a speed outlier."
        },
    )
    aggregation: Literal["majority", "dawid_skene"] = field(
        default="majority",
        metadata={"help": "majority: vote weighted by reliability; dawid_skene: each rater's confusion matrix by EM."},
    )
    flagged_weight: float = field(
        default=0.25, metadata={"help": "Vote weight of a flagged rater in the majority vote."}
    )
    min_agreement: float = field(
        default=0.6, metadata={"help": "Items whose consensus has less support than this are contested."}
    )
    exclude_contested: bool = field(
        default=False, metadata={"help": "Leave contested items out of consensus.jsonl (they are always counted)."}
    )


def config_types() -> tuple:
    """The dataclasses a `plumb collect quality` config fills."""
    return (QualityArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then report."""
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def main(args: QualityArguments) -> dict:
    """Compute, print and save the quality report; returns what quality.json holds."""
    # Judgments: a reward model's pre-labels are kept apart from the humans'
    records = load_records(args.judgments, args.split)
    table = judgment_table(records, source=args.judgments)
    is_model = table.rater == args.model_rater
    if args.model_rater and not is_model.any():
        raise DataError(f"{args.judgments}: no judgments by model_rater '{args.model_rater}'")
    humans = table.subset(~is_model)
    model = table.subset(is_model) if is_model.any() else None
    report, (items, consensus, support, contested) = quality_figures(humans, args, model=model)
    report["simulated_judgments"] = simulated_judgments(records)

    # Report and save
    print(format_report(report))
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "quality.json").write_text(json.dumps(report, indent=2))
    write_consensus(
        output_dir / "consensus.jsonl", humans, items, consensus, support, contested, exclude=args.exclude_contested
    )
    save_resolved_config(output_dir, args)
    logger.info("Quality report written to %s", output_dir.resolve())
    return report


def quality_figures(humans, args: QualityArguments, *, model=None) -> tuple[dict, tuple]:
    """(the report: agreement, per-rater rows, aggregation, reward-model agreement; (items, consensus, support,
    contested) arrays) for the human judgments `humans` (a JudgmentTable)."""
    # Agreement
    labels, items, raters = label_matrix(humans, preference(humans))
    ordinal, _, _ = label_matrix(humans, preference(humans, with_strength=True))
    agreement = agreement_summary(labels, ordinal, raters, min_shared=args.min_shared_items)

    # Raters
    rows = rater_report(
        humans,
        min_gold=args.min_gold,
        gold_threshold=args.gold_threshold,
        min_repeats=args.min_repeats,
        consistency_threshold=args.consistency_threshold,
        speed_ratio=args.speed_ratio,
    )

    # Aggregation
    if args.aggregation == "dawid_skene":
        fitted = dawid_skene(labels)
        consensus, support = fitted["consensus"], fitted["support"]
    else:
        consensus, support = majority_vote(labels, reliability_weights(rows, flagged_weight=args.flagged_weight))
    contested = contested_items(consensus, support, min_agreement=args.min_agreement)
    model_report = model_labels_agreement(model, items, consensus) if model is not None else None
    report = {
        "agreement": agreement,
        "raters": rows,
        "aggregation": args.aggregation,
        "items": len(items),
        "contested_items": int(contested.sum()),
        "contested": [str(item) for item in items[contested]],
        "reward_model": model_report,
    }
    return report, (items, consensus, support, contested)


def model_labels_agreement(model, items: np.ndarray, consensus: np.ndarray) -> dict:
    """Agreement of a reward model's judgments (a JudgmentTable) with the human `consensus` (items,)."""
    model_labels, model_items, _ = label_matrix(model, preference(model))
    position = {item: i for i, item in enumerate(items)}
    aligned = np.full(len(items), np.nan)
    for item, label in zip(model_items, model_labels[:, 0]):
        if item in position:
            aligned[position[item]] = label
    return model_agreement(aligned, consensus)


def write_consensus(path: Path, humans, items, consensus, support, contested, *, exclude: bool) -> int:
    """One JSON line per item: its two candidates, the winner (candidate id, "tie" or null), support, contested."""
    _, first = np.unique(humans.item, return_index=True)  # sorted like `items`
    written = 0
    with open(path, "w") as out:
        for i, judgment in enumerate(first):
            if exclude and contested[i]:
                continue
            a, b = sorted((humans.left[judgment], humans.right[judgment]))  # the orientation `preference` uses
            winner = None if np.isnan(consensus[i]) else {-1: a, 0: "tie", 1: b}[int(consensus[i])]
            out.write(
                json.dumps(
                    {
                        "item": str(items[i]),
                        "candidates": [str(a), str(b)],
                        "winner": str(winner) if winner else None,
                        "support": round(float(support[i]), 4),
                        "contested": bool(contested[i]),
                    }
                )
                + "\n"
            )
            written += 1
    return written


def simulated_judgments(records) -> int:
    """How many judgment records came from simulated raters (`"simulated": true`, from `plumb collect simulate`)."""
    return sum(bool(record.get("simulated")) for record in records)


def _shown(value, kind: str = "share") -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if kind == "share" else f"{value:.3f}" if kind == "coef" else f"{value:.3g}"


def format_report(report: dict) -> str:
    """The agreement figures, the per-rater table and the aggregation summary as plain text."""
    agreement = report["agreement"]
    lines = [f"{agreement['items']} items, {agreement['raters']} raters"]
    if report.get("simulated_judgments") is not None:  # so nobody reads simulated labels as people's
        lines.append(
            f"  simulated judgments          {report['simulated_judgments']} (by simulated raters, not people)"
        )
    for name in ("raw_agreement", "raw_agreement_no_ties"):
        lines.append(f"  {name:<28} {_shown(agreement[name], 'coef')}")
    for name in ("fleiss_kappa", "krippendorff_alpha_nominal", "krippendorff_alpha_ordinal"):
        lines.append(f"  {name:<28} {_shown(agreement[name], 'coef')}")
    lines.append(f"  cohen_kappa (pairs)          {len(agreement['cohen_kappa_pairs'])} pairs with enough shared items")
    columns = [
        ("rater", "rater", 12, None),
        ("judgments", "n", 5, "int"),
        ("gold_accuracy", "gold", 5, "share"),
        ("self_consistency", "repeat", 6, "share"),
        ("intransitivity", "cycles", 6, "share"),
        ("length_bias", "longer", 6, "share"),
        ("consensus_agreement", "w/ others", 9, "share"),
        ("left_win_rate", "left", 5, "share"),
        ("position_p_value", "p(left)", 7, "p"),
        ("tie_rate", "ties", 5, "share"),
        ("median_seconds", "med s", 6, "p"),
        ("speed", "speed", 5, None),
    ]
    lines.append("")
    lines.append("  ".join(f"{title:>{width}}" for _, title, width, _ in columns) + "  flags")
    for row in report["raters"]:
        cells = [str(row[key]) if kind in (None, "int") else _shown(row[key], kind) for key, _, _, kind in columns]
        lines.append(
            "  ".join(f"{cell:>{width}}" for cell, (_, _, width, _) in zip(cells, columns))
            + "  "
            + ",".join(row["flags"])
        )
    lines.append(f"\n{report['aggregation']}: {report['contested_items']} of {report['items']} items contested")
    if report["reward_model"]:
        model = report["reward_model"]
        lines.append(
            f"reward model vs consensus: {_shown(model['agreement'])} agree on {model['items']} items, "
            f"{_shown(model['agreement_no_ties'])} without ties, kappa {_shown(model['kappa'], 'coef')}"
        )
    return "\n".join(lines)
