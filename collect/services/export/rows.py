"""The export's rows: `ExportArguments`, the rows of each format from the tasks, and what was left out, by reason."""

from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

from collect.domain.answers import IDENTITY_LEAK, verdict
from collect.services.export.items import TaskItem
from collect.services.export.majority import (
    SPLIT_RULES,
    Outcome,
    aggregate_pairwise,
    aggregate_ranks,
    aggregate_ratings,
    agreement,
)
from collect.services.export.records import battle_records, judgment_records
from collect.store import RATER_KINDS, Judgment
from plumb.data import ranking_pairs

FORMATS = ("pairwise", "ranking", "kto", "sft", "judgments", "battles")


@dataclass
class ExportArguments:
    """What to export, from which database, and how to settle disagreement."""

    campaign: str = field(default="demo", metadata={"help": "Name of the campaign to export."})
    format: str = field(default="pairwise", metadata={"help": f"Dataset format: {', '.join(FORMATS)}."})
    output_dir: str = field(
        default="outputs/collect-export",
        metadata={
            "help": "Where the dataset's Parquet files (one per split), summary.json and README.md go: "
            "`datasets.load_dataset(output_dir)` reads it."
        },
    )
    db: str | None = field(
        default=None,
        metadata={
            "help": "Database URL or SQLite file (default: $PLUMB_DB, else collect.sqlite in the Plumb data dir)."
        },
    )
    per_rater: bool = field(
        default=False, metadata={"help": "One row per rater's own judgment instead of one per task's majority."}
    )
    on_split: str = field(
        default="drop",
        metadata={"help": "When raters split evenly: 'drop' the task, or decide by the sign of the summed 'strength'."},
    )
    both_bad_as_negatives: bool = field(
        default=False,
        metadata={
            "help": "kto: a 'both bad' majority gives every candidate an undesirable row (other formats leave it out)."
        },
    )
    min_judgments: int = field(default=1, metadata={"help": "Leave out tasks with fewer live judgments than this."})
    include_gold: bool = field(default=False, metadata={"help": "Export gold (quality-check) tasks too."})
    include_identity_leaks: bool = field(
        default=False,
        metadata={
            "help": "Keep arena votes flagged 'identity leak' (an answer named its own model): left out by default."
        },
    )
    drop_model_labels: bool = field(
        default=False,
        metadata={"help": "Leave out auto-labels (judgments of a rater of kind 'model', from `plumb collect score`)."},
    )
    test_size: float = field(
        default=0.1,
        metadata={
            "help": "Share of rows held out as a `test` split, whole prompts at a time (a count when >= 1; 0: no "
            "split). The judgments and battles formats are never split."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the held-out split."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Hub dataset repo to push to, with its card."})

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got '{self.format}'")
        if self.on_split not in SPLIT_RULES:
            raise ValueError(f"on_split must be one of {', '.join(SPLIT_RULES)}, got '{self.on_split}'")
        if self.test_size < 0:
            raise ValueError(f"test_size must be 0 or more, got {self.test_size}")


def decide(item: TaskItem, judgments: list, args: ExportArguments) -> Outcome:
    """The task's decision from these judgments (or its one adjudication), by its kind's aggregation rule."""
    if item.task.kind == "pairwise":
        return aggregate_pairwise([(j.preference, j.both_bad) for j in judgments], on_split=args.on_split)
    if item.task.kind == "ranking":
        return aggregate_ranks([j.ranks for j in judgments])
    return aggregate_ratings([j.ratings for j in judgments])


def export_rows(items: list[TaskItem], args: ExportArguments) -> tuple[list[dict], Counter]:
    """The dataset rows of every task (or every rater's judgment with `per_rater`), and what was left out, by reason."""
    if args.format == "judgments":
        return judgment_records(items)
    if args.format == "battles":
        return battle_rows(items, args)
    rows, left_out = [], Counter()
    for item in items:
        if args.drop_model_labels:
            item = without_model_labels(item)
        reason = _skip_reason(item, args)
        if reason:
            left_out[reason] += 1
            continue
        item_agreement = agreement([verdict(j) for _, j in item.judgments])
        groups = [[pair] for pair in item.judgments] if args.per_rater else [item.judgments]
        for group in groups:
            adjudication = item.adjudication if not args.per_rater else None
            meta = {
                "task_id": item.task.id,
                "prompt_id": item.prompt_id,
                "raters": [name for name, _ in group],
                "agreement": item_agreement,
                "judgments": len(item.judgments),
                "adjudicated": adjudication is not None,
                # An auto-label's provenance is the model that gave it, whatever the task's source.
                "source": "model" if _by_models(item, group) else item.task.source,
                "simulated": any(item.rater_kinds.get(name) == "simulated" for name, _ in group),
            }
            edits = [(name, j) for name, j in group if j.edit]
            if args.format == "sft" and edits:
                rows.extend(edit_rows(item, edits, meta))
                continue
            outcome = decide(item, [adjudication] if adjudication else [j for _, j in group], args)
            made, reason = FORMATTERS[args.format](item, outcome, meta, args)
            rows.extend(made)
            if reason:
                left_out[reason] += 1
    return rows, left_out


def _by_models(item: TaskItem, group: list) -> bool:
    return bool(group) and all(item.rater_kinds.get(name) == "model" for name, _ in group)


def without_model_labels(item: TaskItem) -> TaskItem:
    """The task with only people's (and simulated raters') judgments: auto-labels taken out."""
    kept = [(name, j) for name, j in item.judgments if item.rater_kinds.get(name) != "model"]
    return item if len(kept) == len(item.judgments) else replace(item, judgments=kept, auto_labelled=True)


def _skip_reason(item: TaskItem, args: ExportArguments) -> str | None:
    if item.task.is_gold and not args.include_gold:
        return "gold task (a quality check)"
    if not item.judgments and item.auto_labelled:
        return "auto-labelled by a model (drop_model_labels)"
    if not item.judgments:
        return "no judgments yet"
    if len(item.judgments) < args.min_judgments:
        return f"fewer than {args.min_judgments} judgments"
    if item.task.source == "arena":
        # The vote judged the text shown at that moment, not the whole answers stored since: it counts for the
        # leaderboard only, as the page told the rater.
        if not all(item.finished):
            return "arena vote before both answers finished (leaderboard only)"
        if not args.include_identity_leaks and any(IDENTITY_LEAK in (j.flags or []) for _, j in item.judgments):
            return "identity leak (arena vote)"
    return None


def _undecided(outcome: Outcome) -> str | None:
    if outcome.ranks is None:
        return outcome.reason
    return "tie" if len(set(outcome.ranks)) == 1 else None


def pairwise_rows(item: TaskItem, outcome: Outcome, meta: dict, args) -> tuple[list[dict], str | None]:
    """Preference pairs (chosen better than rejected); margin: judgment strength, or the rank difference."""
    if reason := _undecided(outcome):
        return [], reason
    rows = []
    for better, worse in ranking_pairs(outcome.ranks):
        margin = outcome.margin if outcome.margin is not None else float(outcome.ranks[worse] - outcome.ranks[better])
        rows.append(
            {
                "prompt": item.prompt,
                "chosen": item.completions[better],
                "rejected": item.completions[worse],
                "margin": margin,
                "meta": {**meta, "policies": [item.policies[better], item.policies[worse]]},
            }
        )
    return rows, None


def ranking_rows(item: TaskItem, outcome: Outcome, meta: dict, args) -> tuple[list[dict], str | None]:
    """One ranking of all candidates (ties share a rank)."""
    if outcome.ranks is None:
        return [], outcome.reason
    return [
        {
            "prompt": item.prompt,
            "completions": item.completions,
            "ranks": outcome.ranks,
            "meta": {**meta, "policies": item.policies},
        }
    ], None


def kto_rows(item: TaskItem, outcome: Outcome, meta: dict, args) -> tuple[list[dict], str | None]:
    """Unpaired rows: the best candidates desirable, the worst undesirable, the middle of a ranking left unlabelled."""
    if outcome.both_bad and args.both_bad_as_negatives:
        labelled = [(k, False) for k in range(len(item.completions))]
    elif reason := _undecided(outcome):
        return [], reason
    else:
        best, worst = min(outcome.ranks), max(outcome.ranks)
        labelled = [(k, rank == best) for k, rank in enumerate(outcome.ranks) if rank in (best, worst)]
    return [
        {
            "prompt": item.prompt,
            "completion": item.completions[k],
            "label": label,
            "meta": {**meta, "policies": [item.policies[k]]},
        }
        for k, label in labelled
    ], None


def sft_rows(item: TaskItem, outcome: Outcome, meta: dict, args) -> tuple[list[dict], str | None]:
    """The conversation ending in the single best candidate; a tie for best is left out."""
    if reason := _undecided(outcome):
        return [], reason
    best = [k for k, rank in enumerate(outcome.ranks) if rank == 1]
    if len(best) > 1:
        return [], "tie for best"
    return [
        {
            "messages": item.prompt + item.completions[best[0]],
            "meta": {**meta, "policies": [item.policies[best[0]]], "edited": False},
        }
    ], None


def edit_rows(item: TaskItem, edits: list[tuple[str, Judgment]], meta: dict) -> list[dict]:
    """SFT rows whose assistant turn is a rater's edit: one per distinct text, naming its editors and the policy."""
    by_text = defaultdict(list)
    for name, judgment in edits:
        by_text[judgment.edit.strip()].append((name, judgment))
    rows = []
    for text, editors in by_text.items():
        improved = sorted({item.policies[k] for _, j in editors if (k := _better_candidate(j)) is not None})
        rows.append(
            {
                "messages": item.prompt + [{"role": "assistant", "content": text}],
                "meta": {**meta, "raters": [name for name, _ in editors], "policies": improved, "edited": True},
            }
        )
    return rows


def _better_candidate(judgment: Judgment) -> int | None:
    # The edit improves the response its rater preferred; a tie or "both bad" names none.
    if judgment.both_bad or not judgment.preference:
        return None
    return 0 if judgment.preference > 0 else 1


def battle_rows(items: list[TaskItem], args: ExportArguments) -> tuple[list[dict], Counter]:
    """Battles (model_a, model_b, winner) for the leaderboard, and what was left out, by reason."""
    rows = battle_records(items, include_identity_leaks=args.include_identity_leaks)
    left_out = Counter()
    for item in items:
        if item.task.kind != "pairwise":
            left_out["not a pairwise task"] += 1
        elif item.task.is_gold:
            left_out["gold task (a quality check)"] += 1
        elif len(set(item.policies)) < 2:
            left_out["one policy on both sides"] += 1
        elif not item.judgments:
            left_out["no judgments yet"] += 1
        elif not args.include_identity_leaks:
            left_out["identity leak"] += sum(IDENTITY_LEAK in (j.flags or []) for _, j in item.judgments)
    return rows, +left_out  # unary plus drops the zero counts


FORMATTERS = {"pairwise": pairwise_rows, "ranking": ranking_rows, "kto": kto_rows, "sft": sft_rows}


def summarize(items: list[TaskItem], rows: list[dict], left_out: Counter, args: ExportArguments) -> dict:
    """Counts for summary.json and the card: rows, tasks, raters, mean agreement, and what was left out, by reason."""
    judged = [item for item in items if item.judgments]
    agreements = [agreement([verdict(j) for _, j in item.judgments]) for item in judged]
    return {
        "campaign": args.campaign,
        "format": args.format,
        "per_rater": args.per_rater,
        "rows": len(rows),
        "tasks": len(items),
        "judgments": sum(len(item.judgments) for item in items),
        "raters": len({name for item in items for name, _ in item.judgments}),
        "mean_agreement": round(sum(agreements) / len(agreements), 4) if agreements else None,
        "adjudicated_tasks": sum(item.adjudication is not None for item in judged),
        "judgments_by_rater_kind": judgments_by_rater_kind(items),
        "left_out": dict(left_out.most_common()),
    }


def judgments_by_rater_kind(items: list[TaskItem]) -> dict[str, int]:
    """How many live judgments of these tasks each kind of rater gave: {"human": n, "simulated": m, ...}."""
    counts = Counter({kind: 0 for kind in RATER_KINDS})
    counts.update(item.rater_kinds.get(name, "human") for item in items for name, _ in item.judgments)
    return dict(counts)
