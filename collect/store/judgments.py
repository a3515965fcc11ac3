"""Judgments, append-only: submitting, editing and undoing all add a row that supersedes the live one."""

from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from collect.store.audit import record_event
from collect.store.limits import check_judgment_limits
from collect.store.models import Assignment, Judgment, Rater, StoreError, Task, utcnow


class JudgmentError(StoreError):
    """A judgment does not fit its task (wrong kind of answer, wrong number of candidates, out of range)."""


def _successor():
    return aliased(Judgment)


def _head_of_chain(*columns):
    # The row of a (task, rater) chain that no later row supersedes. Built once per shape at import:
    # building a SELECT with an aliased subquery costs several times more than running it.
    later = _successor()
    return select(*columns).where(
        Judgment.task_id == bindparam("task_id"),
        Judgment.rater_id == bindparam("rater_id"),
        ~select(later.id).where(later.supersedes_id == Judgment.id).exists(),
    )


_HEAD = _head_of_chain(Judgment)
# What a new judgment needs of the head it supersedes: plain columns, no ORM object to build.
_HEAD_FACTS = _head_of_chain(Judgment.id, Judgment.retracted, Judgment.created_at)
# The count moves in the database (no read-modify-write) and the statement hands back what it left there.
_COUNT_STEP = (
    update(Task)
    .where(Task.id == bindparam("task_id"))
    .values(judgment_count=Task.judgment_count + bindparam("step"))
    .returning(Task.judgment_count, Task.target_overlap)
)


def live_judgment(*, session: Session, task_id: int, rater_id: int) -> Judgment | None:
    """The head of a rater's chain on a task (possibly a retraction), or None when they never judged it."""
    return session.scalar(_HEAD, {"task_id": task_id, "rater_id": rater_id})


def live_judgments_query(campaign_id: int):
    """A query for every live, non-retracted judgment of a campaign's tasks, oldest first."""
    later = _successor()
    return (
        select(Judgment)
        .join(Task, Task.id == Judgment.task_id)
        .where(
            Task.campaign_id == campaign_id,
            Judgment.retracted.is_(False),
            ~select(later.id).where(later.supersedes_id == Judgment.id).exists(),
        )
        .order_by(Judgment.task_id, Judgment.id)
    )


def live_judgments_per_rater(session: Session, campaign_id: int) -> dict[str, int]:
    """How many live judgments each rater has in the campaign, by rater name."""
    live = live_judgments_query(campaign_id).subquery()
    rows = session.execute(
        select(Rater.name, func.count()).join(live, live.c.rater_id == Rater.id).group_by(Rater.name)
    )
    return dict(rows.all())


def check_answer(task: Task, *, preference, both_bad: bool, ranks, ratings) -> None:
    """Raise `JudgmentError` unless the answer has the shape the task's kind needs."""
    size = len(task.candidate_ids)
    given = {
        "preference": preference is not None,
        "both_bad": bool(both_bad),
        "ranks": ranks is not None,
        "ratings": ratings is not None,
    }
    fits = {"pairwise": {"preference", "both_bad"}, "ranking": {"ranks"}, "rating": {"ratings"}}[task.kind]
    foreign = sorted(key for key, present in given.items() if present and key not in fits)
    if foreign:
        raise JudgmentError(f"a {task.kind} judgment takes no {' or '.join(foreign)}")
    if preference is not None and both_bad:
        raise JudgmentError("a pairwise judgment is a preference or both_bad, not both")
    if task.kind == "pairwise":
        if preference is None and not both_bad:
            raise JudgmentError("a pairwise judgment needs a preference (-3..3) or both_bad")
        if preference is not None and (isinstance(preference, bool) or preference not in range(-3, 4)):
            raise JudgmentError(f"preference must be an integer from -3 to 3, got {preference!r}")
    elif task.kind == "ranking":
        if not isinstance(ranks, list) or len(ranks) != size or not all(type(r) is int and r >= 1 for r in ranks):
            raise JudgmentError(f"a ranking judgment needs {size} ranks, integers from 1 (best), got {ranks!r}")
    elif not isinstance(ratings, list) or len(ratings) != size or not all(type(r) is int for r in ratings):
        raise JudgmentError(f"a rating judgment needs {size} integer ratings, got {ratings!r}")


def record_judgment(
    *,
    session: Session,
    assignment: Assignment,
    preference: int | None = None,
    both_bad: bool = False,
    ranks: list[int] | None = None,
    ratings: list[int] | None = None,
    rationale: str = "",
    flags: list[str] | None = None,
    seconds_spent: float | None = None,
    edit: str | None = None,
    prelabel_seen: bool | None = None,
    undo_minutes: float | None = None,
    now: datetime | None = None,
) -> Judgment:
    """Append a judgment for the assignment's task, superseding the rater's live one (a change of mind) if any.

    Answers are in the task's canonical candidate order. With `undo_minutes`, a live judgment older than
    that (at `now`) is not superseded: `JudgmentError`, since changing it is then a reviewer's decision.
    The task's live count moves in the same transaction, and the task's `judgment_count` and
    `target_overlap` read afterwards are the database's; a concurrent double submission fails on the
    database's unique indexes.
    """
    task = session.get(Task, assignment.task_id)
    check_judgment_limits(rationale=rationale, edit=edit, flags=list(flags or []), seconds_spent=seconds_spent)
    check_answer(task, preference=preference, both_bad=both_bad, ranks=ranks, ratings=ratings)
    session.flush()  # the head is read on the connection, past the session's autoflush
    head = session.connection().execute(_HEAD_FACTS, {"task_id": task.id, "rater_id": assignment.rater_id}).first()
    replaces_live = head is not None and not head.retracted
    if replaces_live and undo_minutes is not None and past_undo_window(head.created_at, undo_minutes, now):
        raise JudgmentError(too_old("your judgment of this task", undo_minutes))
    judgment = Judgment(
        task_id=task.id,
        rater_id=assignment.rater_id,
        assignment_id=assignment.id,
        supersedes_id=head.id if head else None,
        preference=preference,
        both_bad=both_bad,
        ranks=ranks,
        ratings=ratings,
        rationale=rationale,
        flags=list(flags or []),
        seconds_spent=seconds_spent,
        edit=edit or None,
        prelabel_seen=prelabel_seen,
    )
    session.add(judgment)
    assignment.state = "judged"
    session.flush()  # the INSERT, for the id the audit event names
    if replaces_live:
        # An edit leaves the count alone; another transaction may have moved it since the task was loaded.
        session.expire(task, ["judgment_count", "target_overlap"])
    else:
        _add_to_count(session, task.id, +1)
    record_event(
        session=session,
        action="judgment.edited" if replaces_live else "judgment.submitted",
        task_id=task.id,
        judgment_id=judgment.id,
        rater_id=assignment.rater_id,
    )
    return judgment


def past_undo_window(created_at: datetime, undo_minutes: float, now: datetime | None = None) -> bool:
    """Whether a judgment created at `created_at` is more than `undo_minutes` old at `now` (default: the present)."""
    return (now or utcnow()) - created_at > timedelta(minutes=undo_minutes)


def too_old(what: str, undo_minutes: float) -> str:
    """The refusal to change `what` past the undo window: it may already be exported or adjudicated."""
    return f"{what} is more than {undo_minutes:g} minutes old: ask a reviewer to change it"


def retract_judgment(*, session: Session, judgment: Judgment) -> Judgment:
    """Undo a live judgment: append a retraction that supersedes it; returns the retraction."""
    if judgment.retracted:
        raise JudgmentError(f"judgment {judgment.id} is already an undo")
    retraction = Judgment(
        task_id=judgment.task_id,
        rater_id=judgment.rater_id,
        assignment_id=judgment.assignment_id,
        supersedes_id=judgment.id,
        retracted=True,
    )
    session.add(retraction)
    session.flush()
    _add_to_count(session, judgment.task_id, -1)
    record_event(
        session=session,
        action="judgment.retracted",
        task_id=judgment.task_id,
        judgment_id=judgment.id,
        rater_id=judgment.rater_id,
    )
    return retraction


def _add_to_count(session: Session, task_id: int, step: int) -> None:
    # An UPDATE expression, not a read-modify-write, so concurrent judgments never lose a count. Run on the
    # connection (the caller has flushed): an ORM-enabled UPDATE costs more to set up than it takes to run.
    counts = session.connection().execute(_COUNT_STEP, {"task_id": task_id, "step": step}).one()
    task = session.identity_map.get(identity_key(Task, task_id))
    if task is not None:  # a loaded task shows what is now in the database, without reading it back
        set_committed_value(task, "judgment_count", counts.judgment_count)
        set_committed_value(task, "target_overlap", counts.target_overlap)


def judge_without_lease(session, task: Task, rater_id: int, *, now, assignment: Assignment | None = None, **answer):
    """Record a judgment no lease preceded (an import, an auto-label): an assignment in state judged, shown in the
    canonical order, then the judgment. Given a rater's `assignment` again, the new answer supersedes theirs."""
    if assignment is None:
        order = list(range(len(task.candidate_ids)))
        assignment = Assignment(task_id=task.id, rater_id=rater_id, candidate_order=order, expires_at=now)
        session.add(assignment)
        session.flush()
    record_judgment(session=session, assignment=assignment, now=now, **answer)
    return assignment
