"""`plumb collect quality`: how far the raters agree, which raters to trust, and one label per item.

Reads judgments (rater, item, left, right, choice, optional strength, lengths, seconds,
gold, pre-label fields; see collect/domain/quality/judgments.py) from a JSONL/Parquet/CSV
file, prints the agreement figures and the per-rater table, and writes quality.json,
consensus.jsonl (one aggregated label per item, contested items marked) and the resolved
config. A model's judgments (`model_rater`'s, and auto-labels: `model_label` true) are
kept out of the people's figures and compared with their consensus; with pre-labels the
report adds the model's accuracy per confidence band and the raters' anchoring on it.

    plumb collect quality --config configs/collect/quality-demo.yaml
"""

import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import numpy as np

from collect.domain.quality.judgments import judgment_table
from collect.domain.quality.prelabels import check_edges
from collect.domain.quality.report import QualitySettings, format_report, quality_figures, split_models
from plumb.config import parse_config, save_resolved_config
from plumb.data import DataError, load_records

logger = logging.getLogger(__name__)
DEFAULTS = QualitySettings()


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
        default=DEFAULTS.min_shared_items, metadata={"help": "Shared items a pair of raters needs for Cohen's kappa."}
    )
    min_gold: int = field(
        default=DEFAULTS.min_gold, metadata={"help": "Gold items a rater needs before the gold check can flag them."}
    )
    gold_threshold: float = field(
        default=DEFAULTS.gold_threshold, metadata={"help": "Flag raters below this accuracy on gold items."}
    )
    min_repeats: int = field(
        default=DEFAULTS.min_repeats,
        metadata={"help": "Repeats a rater needs before the consistency check can flag them."},
    )
    consistency_threshold: float = field(
        default=DEFAULTS.consistency_threshold,
        metadata={"help": "Flag raters who repeat their own earlier verdict less often than this."},
    )
    rushed_share: float = field(
        default=DEFAULTS.rushed_share,
        metadata={
            "help": "Flag a rater 'fast' when at least this share of their timed judgments took less than "
            "reading the answers does."
        },
    )
    aggregation: Literal["majority", "dawid_skene"] = field(
        default=DEFAULTS.aggregation,
        metadata={"help": "majority: vote weighted by reliability; dawid_skene: each rater's confusion matrix by EM."},
    )
    flagged_weight: float = field(
        default=DEFAULTS.flagged_weight, metadata={"help": "Vote weight of a flagged rater in the majority vote."}
    )
    min_agreement: float = field(
        default=DEFAULTS.min_agreement,
        metadata={"help": "Items whose consensus has less support than this are contested."},
    )
    exclude_contested: bool = field(
        default=False, metadata={"help": "Leave contested items out of consensus.jsonl (they are always counted)."}
    )
    confidence_edges: list[float] = field(
        default_factory=lambda: list(DEFAULTS.confidence_edges),
        metadata={
            "help": "Edges of the pre-label confidence bands in which the model's accuracy against the consensus "
            "is shown (the last band includes its top edge)."
        },
    )

    def __post_init__(self):
        self.confidence_edges = list(check_edges(self.confidence_edges))

    def settings(self) -> QualitySettings:
        """The thresholds and the aggregation these arguments set."""
        values = {f.name: getattr(self, f.name) for f in fields(QualitySettings)}
        return QualitySettings(**{**values, "confidence_edges": tuple(self.confidence_edges)})


def config_types() -> tuple:
    """The dataclasses a `plumb collect quality` config fills."""
    return (QualityArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then report."""
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def main(args: QualityArguments) -> dict:
    """Compute, print and save the quality report; returns what quality.json holds."""
    # Judgments: a reward model's (pre-labels as a rater, auto-labels) are kept apart from the humans'
    records = load_records(args.judgments, args.split)
    table = judgment_table(records, source=args.judgments)
    if args.model_rater and not (table.rater == args.model_rater).any():
        raise DataError(f"{args.judgments}: no judgments by model_rater '{args.model_rater}'")
    humans, model = split_models(table, args.model_rater)
    if not len(humans):
        raise DataError(f"{args.judgments}: no judgments by people, only a model's (model_rater, model_label)")
    report, (items, consensus, support, contested) = quality_figures(humans, args.settings(), model=model)
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
