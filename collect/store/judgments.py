"""Judgments, append-only: submitting, editing and undoing all add a row that supersedes the live one."""

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased

from collect.store.audit import record_event
from collect.store.limits import check_judgment_limits
from collect.store.models import Assignment, Judgment, Rater, StoreError, Task


class JudgmentError(StoreError):
    """A judgment does not fit its task (wrong kind of answer, wrong number of candidates, out of range)."""


def _successor():
    return aliased(Judgment)


def live_judgment(*, session: Session, task_id: int, rater_id: int) -> Judgment | None:
    """The head of a rater's chain on a task (possibly a retraction), or None when they never judged it."""
    later = _successor()
    query = select(Judgment).where(
        Judgment.task_id == task_id,
        Judgment.rater_id == rater_id,
        ~select(later.id).where(later.supersedes_id == Judgment.id).exists(),
    )
    return session.scalar(query)


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
) -> Judgment:
    """Append a judgment for the assignment's task, superseding the rater's live one (a change of mind) if any.

    Answers are in the task's canonical candidate order. The task's live count moves in the
    same transaction; a concurrent double submission fails on the database's unique indexes.
    """
    task = session.get(Task, assignment.task_id)
    check_judgment_limits(rationale=rationale, edit=edit, flags=list(flags or []), seconds_spent=seconds_spent)
    check_answer(task, preference=preference, both_bad=both_bad, ranks=ranks, ratings=ratings)
    head = live_judgment(session=session, task_id=task.id, rater_id=assignment.rater_id)
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
    )
    session.add(judgment)
    assignment.state = "judged"
    if head is None or head.retracted:
        _add_to_count(session, task.id, +1)
    session.flush()
    record_event(
        session=session,
        action="judgment.edited" if head and not head.retracted else "judgment.submitted",
        task_id=task.id,
        judgment_id=judgment.id,
        rater_id=assignment.rater_id,
    )
    return judgment


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
    _add_to_count(session, judgment.task_id, -1)
    session.flush()
    record_event(
        session=session,
        action="judgment.retracted",
        task_id=judgment.task_id,
        judgment_id=judgment.id,
        rater_id=judgment.rater_id,
    )
    return retraction


def _add_to_count(session: Session, task_id: int, step: int) -> None:
    # An UPDATE expression, not a read-modify-write, so concurrent judgments never lose a count.
    statement = update(Task).where(Task.id == task_id).values(judgment_count=Task.judgment_count + step)
    session.execute(statement.execution_options(synchronize_session=False))
    task = session.get(Task, task_id)
    if task is not None:
        session.expire(task, ["judgment_count"])  # read back from the database when next used
