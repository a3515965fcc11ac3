"""Which task a rater sees next, and what happens when they answer, skip or undo.

Plain functions over a session. Concurrency: on SQLite every transaction begins
IMMEDIATE (see `collect.store.engine`), so choosing and leasing a task is one
serialized step. On PostgreSQL the chosen task row is locked `FOR UPDATE SKIP LOCKED`
(other raters pass over it instead of waiting), and its free slots are counted again
in a fresh statement once the lock is held: every lease of a task is written while
holding that task's lock, so the recount cannot be stale.

The next-task and submit paths run once per rater action, so their statements are built
once (bound parameters, not new SELECTs per call) and the campaign's spec comes from
`campaign_cache` instead of being parsed again.
"""

import random
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from collect.domain.answers import raters_disagree
from collect.domain.campaign import CampaignSpec
from collect.services.campaign_cache import campaign_spec
from collect.services.free_tasks import lock_free_task
from collect.store import (
    Assignment,
    Campaign,
    Judgment,
    JudgmentError,
    Rater,
    Task,
    live_judgment,
    live_judgments_query,
    record_event,
    record_judgment,
    retract_judgment,
)
from collect.store.judgments import past_undo_window, too_old
from collect.store.models import utcnow


def set_priorities(*, session: Session, priorities: dict[int, float]) -> None:
    """The priority hook: store a score per task id for the `priority` strategy (higher is served first)."""
    for task_id, score in priorities.items():
        session.execute(update(Task).where(Task.id == task_id).values(priority=float(score)))


def next_task(
    *, session: Session, campaign: Campaign, rater: Rater, rng: random.Random | None = None, now: datetime | None = None
) -> Assignment | None:
    """Lease the rater's next task, or return their unexpired lease; None when nothing is left for them.

    Never a task they judged or skipped; overlap respected; gold tasks mixed in at the
    campaign's share; the candidate order shown is randomized and recorded.
    """
    rng = rng or random.SystemRandom()
    now = now or utcnow()
    spec = campaign_spec(campaign)
    params = {"campaign_id": campaign.id, "rater_id": rater.id, "now": now}
    held = session.scalar(_HELD, params)
    if held is not None:
        return held
    # A gold task at the configured share (a regular one when no gold is left for them), else a regular
    # task (a gold one when the regular have run out); no gold at all when the share is 0.
    if not spec.gold_share:
        pools = [False]
    else:
        pools = [True, False] if rng.random() < spec.gold_share else [False, True]
    for gold in pools:
        found = lock_free_task(session, spec, gold=gold, params=params)
        if found is not None:
            task, my_lease_id = found
            return _lease(session, task, my_lease_id, rater, spec, rng=rng, now=now)
    return None


# The rater's unexpired lease in the campaign. Parameters of this and the statements below:
# campaign_id, rater_id and now.
_HELD = (
    select(Assignment)
    .join(Task, Task.id == Assignment.task_id)
    .where(
        Task.campaign_id == bindparam("campaign_id"),
        Assignment.rater_id == bindparam("rater_id"),
        Assignment.state == "leased",
        Assignment.expires_at > bindparam("now"),
    )
    # Most recent first: a task taken back with undo shows before the one it interrupted, which stays leased.
    .order_by(Assignment.leased_at.desc(), Assignment.id.desc())
    .limit(1)
)


def _lease(
    session: Session,
    task: Task,
    my_lease_id: int | None,
    rater: Rater,
    spec: CampaignSpec,
    *,
    rng: random.Random,
    now: datetime,
) -> Assignment:
    order = list(range(len(task.candidate_ids)))
    rng.shuffle(order)
    expires = now + timedelta(minutes=spec.lease_minutes)
    if my_lease_id is None:
        assignment = Assignment(task_id=task.id, rater_id=rater.id)
        session.add(assignment)
    else:  # a lease of theirs that expired is renewed in place, keeping one row per pair
        assignment = session.get(Assignment, my_lease_id)
    assignment.candidate_order, assignment.leased_at, assignment.expires_at = order, now, expires
    session.flush()
    return assignment


# An assignment with its task, when it is the rater's and in the campaign.
_IN_CAMPAIGN = (
    select(Assignment, Task)
    .join(Task, Task.id == Assignment.task_id)
    .where(
        Assignment.id == bindparam("assignment_id"),
        Assignment.rater_id == bindparam("rater_id"),
        Task.campaign_id == bindparam("campaign_id"),
    )
)


def assignment_in_campaign(
    *, session: Session, campaign: Campaign, rater: Rater, assignment_id: int
) -> tuple[Assignment, Task] | None:
    """The rater's assignment `assignment_id` in the campaign and its task, in one statement; None otherwise.

    While the caller holds them, `submit_judgment` and `skip_task` find both in the session without reading again.
    """
    params = {"assignment_id": assignment_id, "rater_id": rater.id, "campaign_id": campaign.id}
    found = session.execute(_IN_CAMPAIGN, params).first()
    return None if found is None else (found.Assignment, found.Task)


def own_assignment(*, session: Session, rater: Rater, assignment_id: int) -> Assignment:
    """The rater's assignment `assignment_id`; `JudgmentError` when it is not theirs or does not exist."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or assignment.rater_id != rater.id:
        raise JudgmentError(f"assignment {assignment_id} is not one of yours")
    return assignment


def to_canonical(assignment: Assignment, *, preference=None, ranks=None, ratings=None) -> dict:
    """Turn an answer in display order (A = shown first) into the task's canonical candidate order."""
    order = assignment.candidate_order  # display position -> canonical index
    out = {"preference": preference, "ranks": None, "ratings": None}
    if preference is not None and order and order[0] != 0:
        out["preference"] = -preference  # shown A was the task's second candidate
    for key, values in (("ranks", ranks), ("ratings", ratings)):
        if isinstance(values, list) and len(values) == len(order):
            canonical = [None] * len(order)
            for position, value in enumerate(values):
                canonical[order[position]] = value
            out[key] = canonical
        else:
            out[key] = values  # wrong shapes are reported by the store's answer check
    return out


def submit_judgment(
    *,
    session: Session,
    rater: Rater,
    assignment_id: int,
    preference: int | None = None,
    both_bad: bool = False,
    ranks: list[int] | None = None,
    ratings: list[int] | None = None,
    rationale: str = "",
    flags: list[str] | None = None,
    seconds_spent: float | None = None,
    edit: str | None = None,
    now: datetime | None = None,
) -> Judgment:
    """Record the rater's answer (in display order) to an assignment; a second answer replaces the first.

    Only within the campaign's `undo_minutes`, as an undo: a judgment older than that may already have been
    exported or adjudicated, and changing it is a reviewer's decision.

    `edit` is the rater's improved version of the better response (pairwise tasks of a
    campaign with `allow_edits`); the SFT export prefers it to the response it improves.

    An answer to a lease that has expired is still stored (paid work is never thrown away),
    so a task whose slot was re-leased meanwhile can end up with one judgment more than its overlap.
    """
    assignment = own_assignment(session=session, rater=rater, assignment_id=assignment_id)
    if assignment.state == "skipped":
        raise JudgmentError(f"assignment {assignment_id} was skipped")
    task = session.get(Task, assignment.task_id)
    spec = campaign_spec(session.get(Campaign, task.campaign_id))
    _check_options(spec, both_bad=both_bad, ratings=ratings, rationale=rationale, flags=flags)
    edit = (edit or "").strip() or None
    if edit is not None and not spec.allow_edits:
        raise JudgmentError("this campaign does not ask raters to improve a response")
    if edit is not None and task.kind != "pairwise":
        raise JudgmentError(f"an improved response goes with a pairwise judgment, not a {task.kind} one")
    answer = to_canonical(assignment, preference=preference, ranks=ranks, ratings=ratings)
    judgment = record_judgment(
        session=session,
        assignment=assignment,
        both_bad=both_bad,
        rationale=rationale,
        flags=flags,
        seconds_spent=seconds_spent,
        edit=edit,
        prelabel_seen=_saw_prelabel(session, task, spec, rater),
        undo_minutes=spec.undo_minutes,  # the store refuses to replace a live judgment older than this
        now=now,
        **answer,
    )
    _grow_overlap_on_disagreement(session, task, spec)
    return judgment


def _saw_prelabel(session: Session, task: Task, spec: CampaignSpec, rater: Rater) -> bool | None:
    # `shown` puts the model's answer before the rater's eyes ahead of theirs; `after_vote` only once they have
    # answered, so an answer given again after an undo (or as a change) was given having seen it.
    if task.prelabel is None:
        return None
    if spec.prelabels == "shown":
        return True
    return (
        spec.prelabels == "after_vote"
        and live_judgment(session=session, task_id=task.id, rater_id=rater.id) is not None
    )


def _check_options(spec: CampaignSpec, *, both_bad, ratings, rationale, flags) -> None:
    if both_bad and not spec.allow_both_bad:
        raise JudgmentError("this campaign does not offer 'both bad'")
    if spec.rationale == "required" and not (rationale or "").strip():
        raise JudgmentError("this campaign asks for a rationale with every judgment")
    unknown = sorted(set(flags or []) - set(spec.flags))
    if unknown:
        offered = ", ".join(spec.flags)
        raise JudgmentError(f"unknown flag(s) {', '.join(map(repr, unknown))} (this campaign offers: {offered})")
    if isinstance(ratings, list) and not all(type(r) is int and 1 <= r <= spec.rating_points for r in ratings):
        raise JudgmentError(f"ratings must be integers from 1 to {spec.rating_points}, got {ratings}")


def _grow_overlap_on_disagreement(session: Session, task: Task, spec: CampaignSpec) -> None:
    # `record_judgment` left the task's count and overlap as the database has them after this judgment.
    if task.is_gold or task.judgment_count < task.target_overlap or task.target_overlap >= spec.max_raters_per_task:
        return
    judgments = session.scalars(live_judgments_query(task.campaign_id).where(Judgment.task_id == task.id))
    if raters_disagree(judgments):
        task.target_overlap += 1
        record_event(session=session, action="task.overlap_grown", task_id=task.id, overlap=task.target_overlap)


def skip_task(*, session: Session, rater: Rater, assignment_id: int) -> Assignment:
    """The rater passes on a task; it is never offered to them again and its slot goes back to the pool."""
    assignment = own_assignment(session=session, rater=rater, assignment_id=assignment_id)
    if assignment.state != "leased":
        raise JudgmentError(f"assignment {assignment_id} is already {assignment.state}")
    # The lease ends at the skip: `expires_at` then says when it was skipped, for undo's window.
    assignment.state, assignment.expires_at = "skipped", utcnow()
    record_event(session=session, action="task.skipped", rater=rater, task_id=assignment.task_id)
    return assignment


def undo_last(*, session: Session, campaign: Campaign, rater: Rater, now: datetime | None = None) -> Assignment:
    """Take back the rater's latest action in the campaign, a judgment (retracted) or a skip, and lease its task
    back to them; pressed again, the one before, and so on: a way back over their recent items.

    Only within the campaign's `undo_minutes`: later, a judgment may already have been exported or
    adjudicated, and changing it is a reviewer's decision.
    """
    latest = session.scalars(
        live_judgments_query(campaign.id)
        .where(Judgment.rater_id == rater.id)
        .where(Task.source == "pool")
        .order_by(None)
        .order_by(Judgment.id.desc())
        .limit(1)
    ).first()
    skipped = session.scalars(
        select(Assignment)
        .join(Task, Task.id == Assignment.task_id)
        .where(Task.campaign_id == campaign.id, Assignment.rater_id == rater.id, Assignment.state == "skipped")
        .order_by(Assignment.expires_at.desc(), Assignment.id.desc())
        .limit(1)
    ).first()
    spec, now = campaign_spec(campaign), now or utcnow()
    if skipped is not None and (latest is None or skipped.expires_at >= latest.created_at):
        if past_undo_window(skipped.expires_at, spec.undo_minutes, now):
            raise JudgmentError(too_old("your last skip", spec.undo_minutes))
        assignment = skipped
        record_event(session=session, action="task.unskipped", rater=rater, task_id=assignment.task_id)
    elif latest is not None:
        if past_undo_window(latest.created_at, spec.undo_minutes, now):
            raise JudgmentError(too_old("your last judgment", spec.undo_minutes))
        retract_judgment(session=session, judgment=latest)
        assignment = session.get(Assignment, latest.assignment_id)
    else:
        raise JudgmentError("nothing to undo")
    assignment.state, assignment.leased_at = "leased", now
    assignment.expires_at = now + timedelta(minutes=spec.lease_minutes)
    return assignment
