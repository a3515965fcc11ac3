"""The quality report of one set of judgments: agreement, per-rater rows, aggregated labels, and the report as text.

What `plumb collect quality` prints and saves, and what the app's Campaign tab shows,
computed the same way from a `JudgmentTable` and the thresholds in `QualitySettings`.
When the judgments carry a reward model's pre-labels, the report gains a `prelabels`
section (see `prelabels.py`); without them it has no such key and prints as before.
"""

from dataclasses import dataclass

import numpy as np

from collect.domain.quality.aggregate import (
    contested_items,
    dawid_skene,
    majority_vote,
    model_agreement,
    reliability_weights,
)
from collect.domain.quality.agreement import agreement_summary
from collect.domain.quality.judgments import JudgmentTable, label_matrix, preference
from collect.domain.quality.prelabels import DEFAULT_EDGES, prelabel_figures
from collect.domain.quality.raters import RUSHED_SHARE, rater_report


@dataclass(frozen=True)
class QualitySettings:
    """The thresholds of the rater checks and how to aggregate (`plumb collect quality`'s keys of the same names)."""

    min_shared_items: int = 10
    min_gold: int = 5
    gold_threshold: float = 0.7
    min_repeats: int = 3
    consistency_threshold: float = 0.7
    rushed_share: float = RUSHED_SHARE
    aggregation: str = "majority"  # majority | dawid_skene
    flagged_weight: float = 0.25
    min_agreement: float = 0.6
    confidence_edges: tuple[float, ...] = DEFAULT_EDGES  # the pre-label confidence bands' edges


def split_models(table: JudgmentTable, model_rater: str | None = None) -> tuple[JudgmentTable, JudgmentTable | None]:
    """(people's judgments, the model's or None): auto-labels (`model_label`) and `model_rater`'s are the model's,
    so they never count as a rater's agreement or vote in the consensus they are compared with."""
    is_model = table.model_label | (table.rater == model_rater)
    return table.subset(~is_model), table.subset(is_model) if is_model.any() else None


def quality_figures(humans, settings: QualitySettings, *, model=None) -> tuple[dict, tuple]:
    """(the report: agreement, per-rater rows, aggregation, reward-model agreement; (items, consensus, support,
    contested) arrays) for the human judgments `humans` (a JudgmentTable)."""
    # Agreement
    labels, items, raters = label_matrix(humans, preference(humans))
    ordinal, _, _ = label_matrix(humans, preference(humans, with_strength=True))
    agreement = agreement_summary(labels, ordinal, raters, min_shared=settings.min_shared_items)

    # Raters
    rows = rater_report(
        humans,
        min_gold=settings.min_gold,
        gold_threshold=settings.gold_threshold,
        min_repeats=settings.min_repeats,
        consistency_threshold=settings.consistency_threshold,
        rushed_share=settings.rushed_share,
    )

    # Aggregation
    if settings.aggregation == "dawid_skene":
        fitted = dawid_skene(labels)
        consensus, support = fitted["consensus"], fitted["support"]
    else:
        consensus, support = majority_vote(labels, reliability_weights(rows, flagged_weight=settings.flagged_weight))
    contested = contested_items(consensus, support, min_agreement=settings.min_agreement)
    model_report = model_labels_agreement(model, items, consensus) if model is not None else None
    report = {
        "agreement": agreement,
        "raters": rows,
        "aggregation": settings.aggregation,
        "items": len(items),
        "contested_items": int(contested.sum()),
        "contested": [str(item) for item in items[contested]],
        "reward_model": model_report,
    }
    auto_labels = int(model.model_label.sum()) if model is not None else 0
    if (humans.prelabel != "").any() or auto_labels:  # only then: files without pre-labels report as before
        report["prelabels"] = prelabel_figures(
            humans, items, consensus, edges=settings.confidence_edges, auto_labels=auto_labels
        )
    return report, (items, consensus, support, contested)


def model_labels_agreement(model, items: np.ndarray, consensus: np.ndarray) -> dict:
    """Agreement of a reward model's judgments (a JudgmentTable) with the human `consensus` (items,)."""
    # Each item's first model judgment, whichever model rater gave it (a pre-label rater or auto-labels).
    model_items, first = np.unique(model.item, return_index=True)
    position = {item: i for i, item in enumerate(items)}
    aligned = np.full(len(items), np.nan)
    for item, label in zip(model_items, preference(model)[first]):
        if item in position:
            aligned[position[item]] = label
    return model_agreement(aligned, consensus)


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
        ("too_fast", "rushed", 6, "share"),
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
    if report.get("prelabels"):
        lines += format_prelabels(report["prelabels"])
    return "\n".join(lines)


def _interval(row: dict) -> str:
    return "-" if row["ci_low"] is None else f"{row['ci_low']:.0%}-{row['ci_high']:.0%}"


def format_prelabels(section: dict) -> list[str]:
    """The pre-label section as text lines: accuracy per confidence band and from each edge up, then anchoring."""
    bands = section["confidence"]
    lines = [
        "",
        f"pre-labels vs the human consensus: {bands['agree']} of {bands['items']} items agree "
        f"({_shown(bands['accuracy'])}, 95% CI {_interval(bands)}); counted apart: consensus a tie or both bad "
        f"{bands['ties']}, no consensus {bands['undecided']}",
        f"  {'confidence':<11} {'items':>5} {'agree':>5} {'accuracy':>8}  95% CI",
    ]
    for band in bands["bands"]:
        span = f"{band['low']:.2f}-{band['high']:.2f}"
        lines.append(
            f"  {span:<11} {band['items']:>5} {band['agree']:>5} {_shown(band['accuracy']):>8}  {_interval(band)}"
        )
    lines.append(f"  {'from':<11} {'share':>5} {'items':>5} {'accuracy':>8}  95% CI")
    for row in bands["thresholds"]:
        start = f">= {row['threshold']:.2f}"
        lines.append(
            f"  {start:<11} {_shown(row['coverage']):>5} {row['items']:>5} {_shown(row['accuracy']):>8}  "
            f"{_interval(row)}"
        )
    if section["auto_labels"]:
        lines.append(f"auto-labels (a model's judgments, left out of the raters' figures): {section['auto_labels']}")
    anchoring = section["anchoring"]
    lines.append("anchoring: decided judgments of pre-labelled items that chose the model's candidate")
    for name, title in (("seen", "shown before the vote"), ("unseen", "not shown")):
        group = anchoring[name]
        if group is None:
            lines.append(f"  {title:<22} no judgments")
            continue
        lines.append(
            f"  {title:<22} {group['followed']:>4} of {group['judgments']:<4} {_shown(group['share']):>4}  "
            f"95% CI {_interval(group)}  mean confidence {_shown(group['mean_confidence'], 'coef')}"
        )
    if anchoring["difference"] is not None:
        lines.append(
            f"  difference {anchoring['difference'] * 100:+.0f} points, "
            f"two-proportion z-test p = {_shown(anchoring['p_value'], 'p')}"
        )
    return lines
