"""Export a campaign's judgments as a Hugging Face dataset that TRL trains on directly.

Formats (the data contract's): `pairwise` (RewardTrainer, DPOTrainer), `ranking`, `kto`
(unpaired, KTOTrainer) and `sft` (the preferred answer, SFTTrainer); `judgments`, every
rater's pairwise answer as shown on screen, which `plumb collect quality` reads; and
`battles` (model_a, model_b, winner), which `plumb collect leaderboard --battles DIR` reads.
Several raters per task aggregate by majority (pairs) or mean rank (rankings, ratings);
the strength of a pairwise judgment becomes `margin`; `meta` keeps the task, the raters
and their agreement, and `meta.simulated` says when a simulated rater (`plumb collect simulate`)
judged the task. Nothing is dropped silently: summary.json counts every task left out, by reason,
and the judgments by rater kind (human, simulated).

A reviewer's adjudication (the newest one of a task) replaces the majority for that task,
also when raters judged it again afterwards (the review queue offers it again);
`meta.adjudicated` says which rows it decided. Rows per rater (`per_rater`) stay each
rater's own. In `sft`, a rater's edit (their improved version of the better response)
is the assistant turn instead of the best candidate: one row per distinct edit, with
`meta.edited` true; tasks without edits keep the best candidate. Pairwise rows never
use edits: nobody compared an edit with the candidates. Arena battles (`meta.source`
"arena") are exported like other tasks, except a battle voted on before an answer had
finished (its text was cut off) and, unless `include_identity_leaks`, one where an answer
named its own model.

    plumb collect export --config configs/collect/export.yaml
    plumb collect export --campaign demo --format kto --per_rater --output_dir outputs/demo-kto
"""

import json
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from collect.judgment_records import IDENTITY_LEAK, battle_records, judgment_records
from collect.majority import SPLIT_RULES, Outcome, aggregate_pairwise, aggregate_ranks, aggregate_ratings, agreement
from collect.scheduling import judgment_label
from collect.store import (
    RATER_KINDS,
    Adjudication,
    Assignment,
    Candidate,
    Judgment,
    Policy,
    Prompt,
    Rater,
    StoreError,
    Task,
    campaign_by_name,
    live_judgments_query,
    opened_store,
)
from plumb.cards import metrics_table, write_card
from plumb.data import ranking_pairs

logger = logging.getLogger(__name__)

FORMATS = ("pairwise", "ranking", "kto", "sft", "judgments", "battles")


@dataclass
class ExportArguments:
    """What to export, from which database, and how to settle disagreement."""

    campaign: str = field(default="demo", metadata={"help": "Name of the campaign to export."})
    format: str = field(default="pairwise", metadata={"help": f"Dataset format: {', '.join(FORMATS)}."})
    output_dir: str = field(
        default="outputs/collect-export",
        metadata={"help": "Where the dataset (save_to_disk), summary.json and README.md go."},
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
    push_to_hub: str | None = field(default=None, metadata={"help": "Hub dataset repo to push to, with its card."})

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got '{self.format}'")
        if self.on_split not in SPLIT_RULES:
            raise ValueError(f"on_split must be one of {', '.join(SPLIT_RULES)}, got '{self.on_split}'")


@dataclass
class TaskItem:
    """One task as the export needs it: prompt, completions and policies in canonical order, live judgments."""

    task: Task
    prompt_id: str
    prompt: list
    completions: list[list]
    policies: list[str]
    judgments: list[tuple[str, Judgment]]  # (rater name, judgment)
    shown_orders: dict[int, list[int]]  # assignment id -> candidate order shown (display position -> canonical)
    adjudication: Adjudication | None = None  # the newest reviewer's decision, which replaces the majority
    finished: list[bool] = field(default_factory=list)  # per candidate: False for an arena answer cut off at the vote
    rater_kinds: dict[str, str] = field(default_factory=dict)  # rater name -> kind (human, simulated)


def config_types() -> tuple:
    """The dataclasses a `plumb collect export` config fills."""
    return (ExportArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then export."""
    from plumb.config import parse_config

    summary = main(*parse_config(config_types(), argv, prog=prog))
    print(json.dumps(summary, indent=2))
    return 0


def main(args: ExportArguments) -> dict:
    """Export, save to `output_dir` (dataset, summary.json, README.md) and push if asked; returns the summary."""
    # Judgments
    with opened_store(args.db) as sessions, sessions() as session:
        campaign = campaign_by_name(session=session, name=args.campaign)
        items = load_items(session, campaign.id)
        guidelines = campaign.definition.get("guidelines", "")

    # Rows, saved
    dataset, summary = save_export(items, args, guidelines=guidelines)
    if args.push_to_hub:
        push(dataset, Path(args.output_dir), args.push_to_hub)
    return summary


def save_export(items: list["TaskItem"], args: ExportArguments, *, guidelines: str = "") -> tuple:
    """Rows of `items` in `args.format`, saved to `args.output_dir` with summary.json, README.md: (dataset, summary)."""
    import datasets

    rows, left_out = export_rows(items, args)
    dataset = datasets.Dataset.from_list(rows)
    summary = summarize(items, rows, left_out, args)
    output = Path(args.output_dir)
    dataset.save_to_disk(str(output))
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    write_dataset_card(output, summary, guidelines)
    logger.info(
        "Exported %d %s rows from %d tasks to %s; left out: %s",
        len(rows),
        args.format,
        len(items),
        output,
        summary["left_out"] or "none",
    )
    return dataset, summary


def load_items(session, campaign_id: int) -> list[TaskItem]:
    """Every task of the campaign with its prompt, candidates and live (non-retracted) judgments."""
    tasks = session.scalars(select(Task).where(Task.campaign_id == campaign_id).order_by(Task.id)).all()
    prompts = {p.id: p for p in session.scalars(select(Prompt).where(Prompt.campaign_id == campaign_id))}
    candidates = {
        c.id: (c, name)
        for c, name in session.execute(
            select(Candidate, Policy.name)
            .join(Policy)
            .join(Prompt, Prompt.id == Candidate.prompt_id)
            .where(Prompt.campaign_id == campaign_id)
        )
    }
    judgments, rater_kinds = defaultdict(list), {}
    query = (
        live_judgments_query(campaign_id).add_columns(Rater.name, Rater.kind).join(Rater, Rater.id == Judgment.rater_id)
    )
    for judgment, rater_name, rater_kind in session.execute(query):
        judgments[judgment.task_id].append((rater_name, judgment))
        rater_kinds[rater_name] = rater_kind
    orders = defaultdict(dict)
    for task_id, assignment_id, order in session.execute(
        select(Assignment.task_id, Assignment.id, Assignment.candidate_order)
        .join(Task)
        .where(Task.campaign_id == campaign_id)
    ):
        orders[task_id][assignment_id] = order
    adjudications = {}  # ascending ids: the newest of a task is written last
    for adjudication in session.scalars(
        select(Adjudication)
        .join(Task)
        .where(Task.campaign_id == campaign_id)
        .order_by(Adjudication.created_at, Adjudication.id)
    ):
        adjudications[adjudication.task_id] = adjudication
    return [
        TaskItem(
            task=task,
            prompt_id=prompts[task.prompt_id].external_id,
            prompt=prompts[task.prompt_id].messages,
            completions=[candidates[cid][0].completion for cid in task.candidate_ids],
            policies=[candidates[cid][1] for cid in task.candidate_ids],
            judgments=judgments[task.id],
            shown_orders=orders[task.id],
            adjudication=adjudications.get(task.id),
            finished=[candidates[cid][0].settings.get("finished", True) for cid in task.candidate_ids],
            rater_kinds={name: rater_kinds[name] for name, _ in judgments[task.id]},
        )
        for task in tasks
    ]


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
        reason = _skip_reason(item, args)
        if reason:
            left_out[reason] += 1
            continue
        item_agreement = agreement([judgment_label(j) for _, j in item.judgments])
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
                "source": item.task.source,
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


def _skip_reason(item: TaskItem, args: ExportArguments) -> str | None:
    if item.task.is_gold and not args.include_gold:
        return "gold task (a quality check)"
    if not item.judgments:
        return "no judgments yet"
    if len(item.judgments) < args.min_judgments:
        return f"fewer than {args.min_judgments} judgments"
    if item.task.source == "arena":
        # The vote is on the text shown at that moment; as training data a cut-off answer teaches cut-off answers.
        if not all(item.finished):
            return "arena answer cut off at the vote"
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
    agreements = [agreement([judgment_label(j) for _, j in item.judgments]) for item in judged]
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


def write_dataset_card(output: Path, summary: dict, guidelines: str) -> Path:
    """README.md for the Hub: counts, raters, agreement, what was left out, and the raters' guidelines."""
    left_out = "\n".join(f"- {reason}: {count}" for reason, count in summary["left_out"].items()) or "- nothing"
    counts = {key: summary[key] for key in ("rows", "tasks", "judgments", "raters", "mean_agreement")}
    simulated = summary["judgments_by_rater_kind"].get("simulated", 0)
    who = f"Judgments ({simulated} of {summary['judgments']} by simulated raters)" if simulated else "Human judgments"
    return write_card(
        output,
        title=f"Preference data: campaign '{summary['campaign']}' ({summary['format']})",
        summary=f"{who} collected with Plumb and exported in TRL's conversational format"
        + (", one row per rater." if summary["per_rater"] else ", aggregated across raters by majority."),
        metadata={"library_name": "datasets", "tags": ["plumb", "trl", "preference", summary["format"]]},
        sections={
            "Counts": metrics_table(counts),
            "Left out, and why": left_out,
            "Guidelines given to raters": guidelines or "_none_",
        },
    )


class PushError(StoreError):
    """A push to the Hub failed (no network, no token, no access); the message names the repo and the reason.

    A `StoreError`, so the command line prints it as one line, like any other place data cannot be stored.
    """


def push(dataset, output: Path, repo: str) -> None:
    """Push the dataset and its card to the Hub repo `repo`; `PushError` naming the repo when that fails."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as error:
        raise PushError(f"'{repo}' is not a Hub repo id (like team/preferences): {error}") from None
    try:
        dataset.push_to_hub(repo)
        HfApi().upload_file(
            path_or_fileobj=str(output / "README.md"), path_in_repo="README.md", repo_id=repo, repo_type="dataset"
        )
    except Exception as error:  # network, token and permission errors come from several libraries' hierarchies
        raise PushError(
            f"could not push to the Hub dataset repo '{repo}': {type(error).__name__}: {error} "
            f"(the export is saved in {output})"
        ) from error
