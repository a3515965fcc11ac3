"""An import's judgments in the store: imported raters, judgments recorded with the staged tasks, and their removal.

Each annotator of a source is a rater of kind `imported` (no password: it never signs in),
created by the import that first meets them and reused by later ones. Their judgments are
written with the staged tasks, in the import's short transactions, each through an assignment
in state judged (no lease preceded it), so agreement, quality reports, the leaderboard and
exports read them as they read anyone's. A failed or killed import removes what it staged:
the judgments, their assignments and audit events, and the raters it created that nothing
else uses. The ids of those raters live in the staging campaign's definition until then.
"""

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from collect.domain.foreign.labels import kind_problem, task_answer
from collect.store import ApiToken, Assignment, AuditEvent, Judgment, Rater, StoreError, Task, WebSession
from collect.store.judgments import judge_without_lease
from collect.store.limits import is_storable
from collect.store.raters import create_rater
from plumb.data import DataError

NEW_RATERS_KEY = "_import_new_raters"  # in a staging campaign's definition: the raters its import created
JUDGMENT_EVENTS = ("judgment.submitted", "judgment.edited")
SHOWN_RATERS = 20  # the summary's judgments by rater names this many


@dataclass
class LabelTally:
    """What an import's judgments came to: stored judgments by rater, and those left out, by reason."""

    judgments: Counter = field(default_factory=Counter)
    left_out: Counter = field(default_factory=Counter)


def check_labels_fit(rows, spec, *, fmt: str, source: str) -> None:
    """`DataError` naming the first judgment that can never answer a task of the campaign's kind."""
    for index, row in enumerate(rows):
        for n, judgment in enumerate(row.judgments):
            problem = kind_problem(judgment, spec.kind, spec.rating_points)
            if problem:
                raise DataError(
                    f"{source}: row {index}: field 'judgments': entry {n} {problem} "
                    f"({fmt} judgments into {spec.kind} campaign '{spec.name}')"
                )


def ensure_imported_raters(session, names: list[str]) -> tuple[dict[str, int], list[int]]:
    """The imported raters called `names` (created when new): their ids by name, and the ids created now."""
    ids, created = {}, []
    for name in names:
        if not is_storable(name):
            raise DataError(f"rater name {name!r} cannot be stored (a NUL or a lone surrogate)")
        rater = session.scalar(select(Rater).where(Rater.name == name))
        if rater is None:
            rater = create_rater(session=session, name=name, kind="imported")[0]
            created.append(rater.id)
        elif rater.kind != "imported":
            raise StoreError(f"rater '{name}' exists and is not an imported rater (kind {rater.kind}): rename one")
        ids[name] = rater.id
    return ids, created


def record_row_judgments(session, row, candidates: list, tasks: list, raters: dict, tally: LabelTally, *, now):
    """Record each of the row's judgments on each of its (flushed) tasks, as the answer it gives that task."""
    if not tasks:
        tally.left_out["judgment of a prompt with too few candidates for a task"] += len(row.judgments)
        return
    position = {candidate.id: index for index, candidate in enumerate(candidates)}
    held = {}  # (task, rater) -> assignment: a source may hold two answers of one annotator on one task
    for judgment in row.judgments:
        for task in tasks:
            answer = task_answer(judgment, [position[cid] for cid in task.candidate_ids], task.kind)
            if isinstance(answer, str):
                tally.left_out[answer] += 1
                continue
            key = (task.id, raters[judgment.rater])
            if key in held:
                tally.left_out["earlier answer of the same annotator, superseded"] += 1
            held[key] = judge_without_lease(
                session, task, key[1], now=now, assignment=held.get(key), seconds_spent=judgment.seconds, **answer
            )
            tally.judgments[judgment.rater] += 1


def remove_staged_labels(session, staging_ids: list[int]) -> None:
    """Delete the judgments of these staging campaigns' tasks, with their audit events and assignments."""
    quick = {"synchronize_session": False}
    tasks = select(Task.id).where(Task.campaign_id.in_(staging_ids))
    judged = select(Judgment.id).where(Judgment.task_id.in_(tasks))
    staged_events = AuditEvent.action.in_(JUDGMENT_EVENTS) & AuditEvent.detail["judgment_id"].as_integer().in_(judged)
    session.execute(delete(AuditEvent).where(staged_events), execution_options=quick)
    session.execute(delete(Judgment).where(Judgment.task_id.in_(tasks)), execution_options=quick)
    session.execute(delete(Assignment).where(Assignment.task_id.in_(tasks)), execution_options=quick)


def remove_unused_raters(session, rater_ids: list[int]) -> int:
    """Delete the raters (an import created them) that no judgment or assignment uses; returns how many."""
    if not rater_ids:
        return 0
    used = set(session.scalars(select(Assignment.rater_id).where(Assignment.rater_id.in_(rater_ids))))
    unused = [rater_id for rater_id in rater_ids if rater_id not in used]
    if unused:
        quick = {"synchronize_session": False}
        for table in (ApiToken, WebSession, AuditEvent):
            session.execute(delete(table).where(table.rater_id.in_(unused)), execution_options=quick)
        session.execute(delete(Rater).where(Rater.id.in_(unused)), execution_options=quick)
    return len(unused)


def label_summary(conversion, tally: LabelTally, *, raters: int, new_raters: int) -> dict:
    """The import's account of its labels: source format, annotations read, judgments stored, what was left out."""
    return {
        "format": conversion.format,
        **conversion.counts,
        "annotations": conversion.annotations,
        "judgments": sum(tally.judgments.values()),
        "imported_raters": raters,
        "new_raters": new_raters,
        "judgments_by_rater": _most_judgments(tally.judgments),
        "unannotated": conversion.unannotated,
        "left_out": dict(+(conversion.left_out + tally.left_out)),
    }


def _most_judgments(by_rater: Counter, shown: int = SHOWN_RATERS) -> dict:
    """Judgments by rater, for the raters with the most; the rest summed under one key (an arena log has thousands)."""
    top = dict(by_rater.most_common(shown))
    rest = sum(by_rater.values()) - sum(top.values())
    return dict(sorted(top.items())) | ({f"({len(by_rater) - shown} more raters)": rest} if rest else {})
