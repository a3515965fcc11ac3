"""Which tasks are free for a rater, and the best of them by the campaign's strategy, as SQL built once per shape.

A task is free for a rater when it is in the campaign's pool, the rater has not judged or
skipped it, and (gold aside) its slots in use, judgments plus other raters' open leases, are
under its overlap. The best one is found without reading the whole campaign: see `_candidates`.
Statements take the parameters campaign_id, rater_id and now (and passed_over on PostgreSQL).
"""

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import and_, bindparam, func, literal_column, select, union
from sqlalchemy.orm import Session

from collect.domain.campaign import CampaignSpec
from collect.store import Assignment, Campaign, Rater, Task
from collect.store.models import utcnow

# A strategy turns a task's count of slots in use into ORDER BY terms over the task table.
STRATEGIES: dict[str, Callable[[object], list]] = {
    "fewest-judgments-first": lambda in_use: [in_use.asc(), Task.id.asc()],
    "random": lambda in_use: [func.random()],
    # Filled by a priority hook (`set_priorities`), e.g. from reward-model uncertainty; highest first.
    "priority": lambda in_use: [Task.priority.desc(), in_use.asc(), Task.id.asc()],
}
# The reward model's doubt, written into `priority` offline by `plumb collect score`: most doubtful first.
STRATEGIES["uncertainty"] = STRATEGIES["priority"]


def _slots_in_use():
    leases = (
        select(func.count(Assignment.id))
        .where(
            Assignment.task_id == Task.id,
            Assignment.state == "leased",
            Assignment.expires_at > bindparam("now"),
            Assignment.rater_id != bindparam("rater_id"),
        )
        .scalar_subquery()
    )
    return Task.judgment_count + leases


def _eligible(*, gold: bool):
    done = (
        select(Assignment.id)
        .where(
            Assignment.task_id == Task.id,
            Assignment.rater_id == bindparam("rater_id"),
            Assignment.state != "leased",
        )
        .exists()
    )
    conditions = [Task.campaign_id == bindparam("campaign_id"), Task.source == "pool", Task.is_gold.is_(gold), ~done]
    if not gold:  # a gold task is a check every rater may take once, so it has no overlap limit
        conditions.append(_slots_in_use() < Task.target_overlap)
    return and_(*conditions)


# The rater's own (expired) lease of a task, read with the task so that renewing it needs no look-up.
_MY_LEASE = (
    select(Assignment.id)
    .where(Assignment.task_id == Task.id, Assignment.rater_id == bindparam("rater_id"))
    .scalar_subquery()
    .label("my_lease_id")
)
# Orders a task index serves (`ix_tasks_schedule`, `ix_tasks_priority`): read in this order, the first
# eligible task is found without reading the rest of the campaign.
_SCAN_ORDERS = {
    "fewest-judgments-first": [Task.judgment_count.asc(), Task.id.asc()],
    "priority": [Task.priority.desc(), Task.judgment_count.asc(), Task.id.asc()],
}
_SCAN_ORDERS["uncertainty"] = _SCAN_ORDERS["priority"]
_built: dict[tuple, tuple] = {}


def _held_by_others():
    # A literal, not a bound parameter: only then can the planner use the partial index of open leases.
    return and_(
        Assignment.state == literal_column("'leased'"),
        Assignment.expires_at > bindparam("now"),
        Assignment.rater_id != bindparam("rater_id"),
    )


def _candidates(scan_order: list, *, gold: bool, postgresql: bool):
    """The few tasks that can come first: the first eligible task no one else holds, and the tasks others hold.

    On a task no one else holds, slots in use equal `judgment_count`, so there the strategy's order and
    `scan_order` agree; any task the strategy puts before the first such one is held by another rater,
    and there are at most as many of those as raters at work.
    """
    held = select(Assignment.id).where(Assignment.task_id == Task.id, _held_by_others()).exists()
    first_free = select(Task.id).where(_eligible(gold=gold), ~held).order_by(*scan_order).limit(1)
    if postgresql:  # the first free task another transaction is leasing right now is passed over, not waited on
        first_free = first_free.where(Task.id.not_in(bindparam("passed_over", expanding=True)))
        first_free = first_free.with_for_update(skip_locked=True)
    # Of every campaign (the caller keeps this one's): joined to the tasks here, planners read every task first.
    held_tasks = select(Assignment.task_id).where(_held_by_others())
    return union(select(first_free.subquery().c.id), held_tasks).subquery()


def _free_task_statements(strategy: str, *, gold: bool, postgresql: bool) -> tuple:
    """(the best free task and the rater's lease of it, the recount of a locked task), built once per shape."""
    key = (strategy, gold, postgresql)
    if key not in _built:
        order = STRATEGIES[strategy](_slots_in_use())
        best = select(Task, _MY_LEASE).where(_eligible(gold=gold)).order_by(*order).limit(1)
        if strategy in _SCAN_ORDERS:
            candidates = _candidates(_SCAN_ORDERS[strategy], gold=gold, postgresql=postgresql)
            best = best.select_from(candidates).join(Task, Task.id == candidates.c.id)
        if postgresql:
            passed_over = Task.id.not_in(bindparam("passed_over", expanding=True))
            best = best.where(passed_over).with_for_update(skip_locked=True, of=Task)
        recount = select(Task.id).where(Task.id == bindparam("task_id"), _eligible(gold=gold))
        _built[key] = (best, recount)
    return _built[key]


def lock_free_task(session: Session, spec: CampaignSpec, *, gold: bool, params: dict) -> tuple[Task, int | None] | None:
    """The best task free for the rater (gold or not) by the campaign's strategy, locked on PostgreSQL, with the
    rater's own expired lease of it; None when there is none. `params`: campaign_id, rater_id, now."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    best, recount = _free_task_statements(spec.strategy, gold=gold, postgresql=postgresql)
    if not postgresql:
        return session.execute(best, params).first()  # SQLite: BEGIN IMMEDIATE already serializes this transaction
    passed_over = []
    while True:
        found = session.execute(best, {**params, "passed_over": passed_over}).first()
        if found is None:
            return None
        # A new statement sees every lease committed before we took the lock (READ COMMITTED).
        if session.scalar(recount, {**params, "task_id": found.Task.id}) is not None:
            return found
        passed_over.append(found.Task.id)  # filled by a lease that committed after our first look; keep looking


def tasks_left_for(*, session: Session, campaign: Campaign, rater: Rater, now: datetime | None = None) -> int:
    """How many tasks of the campaign this rater could still be given (the one they hold included), gold aside."""
    params = {"campaign_id": campaign.id, "rater_id": rater.id, "now": now or utcnow()}
    return session.scalar(select(func.count(Task.id)).where(_eligible(gold=False)), params)
