"""The disagreement queue and a reviewer's adjudication, as plain functions over the store.

A task enters the queue when its raters disagree: a pool task (not gold, not an arena
battle) with at least two live judgments that say different things
(`collect.domain.answers.raters_disagree`). It leaves when a reviewer adjudicates it, and comes
back if a rater judges it again afterwards. The task waiting longest comes first.

Tasks whose data hygiene flagged their prompt or a candidate for reviewers (`hygiene:` action
`flag`, see `collect.services.hygiene`) join the queue once a rater has judged them, with the
rules that flagged them, so a reviewer decides on the answer knowing the data is suspect.

The reviewer sees the candidates in the task's canonical order, lettered A, B, ..., with
their policies, and every rater's answer mapped onto those letters (not the order each
rater happened to see). An adjudication is stored in the same canonical order, and the
export uses it instead of the majority (`collect.services.export`).
"""

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select

from collect.domain.answers import answer_of, choice_of, raters_disagree
from collect.domain.campaign import spec_of
from collect.services.hygiene import flagged_tasks
from collect.store import (
    STAFF_ROLES,
    Adjudication,
    Campaign,
    Candidate,
    Judgment,
    Policy,
    Prompt,
    Rater,
    StoreError,
    Task,
    campaign_by_name,
    live_judgments_query,
    record_event,
    require_role,
)
from collect.store.judgments import check_answer

LETTERS = "ABCDEFGH"


class AdjudicationError(StoreError):
    """An adjudication cannot be stored as asked (wrong task, answer of the wrong shape); the message says why."""


@dataclass
class ReviewItem:
    """One disputed task as the reviewer sees it: prompt, lettered candidates with policies, every rater's answer."""

    task_id: int
    kind: str
    prompt: list[dict]
    candidates: list[dict]  # {"letter", "policy", "completion"} in canonical order
    answers: list[dict]  # {"rater", "answer", "rationale", "flags", "seconds", "edit"}
    score_choices: list[int] = field(default_factory=list)  # ranking and rating tasks: the values a score may take
    hygiene: list[str] = field(default_factory=list)  # the data hygiene rules that flagged it for reviewers


@dataclass
class ReviewPage:
    """What the review tab shows: the oldest disputed task (None when the queue is empty), queue length, a message."""

    item: ReviewItem | None
    waiting: int
    message: str = ""


def disagreement_queue(session, campaign: Campaign) -> list[int]:
    """Ids of the campaign's disputed pool tasks not adjudicated since their latest judgment, longest waiting first."""
    return undecided(session, disputed_tasks(session, campaign))


def disputed_tasks(session, campaign: Campaign) -> list[int]:
    """Ids of the campaign's pool tasks (not gold) whose live judgments disagree, adjudicated or not."""
    by_task = defaultdict(list)
    query = live_judgments_query(campaign.id).where(Task.source == "pool", Task.is_gold.is_(False))
    for judgment in session.scalars(query):
        by_task[judgment.task_id].append(judgment)
    return [task_id for task_id, judgments in by_task.items() if raters_disagree(judgments)]


def review_queue(session, campaign: Campaign, flagged: dict[int, list[str]]) -> list[int]:
    """The review tab's queue: disputed tasks, and the tasks in `flagged` (by data hygiene, for reviewers) that a
    rater has judged, each until a reviewer decides on it after its latest judgment; longest waiting first."""
    tasks = set(disputed_tasks(session, campaign))
    if flagged:
        query = live_judgments_query(campaign.id).where(Task.id.in_(flagged), Task.is_gold.is_(False))
        tasks |= {judgment.task_id for judgment in session.scalars(query)}
    return undecided(session, sorted(tasks))


def undecided(session, task_ids: list[int]) -> list[int]:
    """Of `task_ids`, those not adjudicated since their latest judgment, longest waiting first."""
    if not task_ids:
        return []
    # Any new row, an undo included, is news the reviewer has not seen.
    changed = dict(
        session.execute(
            select(Judgment.task_id, func.max(Judgment.created_at))
            .where(Judgment.task_id.in_(task_ids))
            .group_by(Judgment.task_id)
        ).all()
    )
    decided = dict(
        session.execute(
            select(Adjudication.task_id, func.max(Adjudication.created_at))
            .where(Adjudication.task_id.in_(task_ids))
            .group_by(Adjudication.task_id)
        ).all()
    )
    waiting = [task_id for task_id in task_ids if task_id not in decided or decided[task_id] < changed[task_id]]
    return sorted(waiting, key=lambda task_id: (changed[task_id], task_id))


def review_item(session, task: Task, *, hygiene: list[str] = ()) -> ReviewItem:
    """The task as a reviewer sees it: candidates and answers in canonical order, lettered A, B, ..., with the data
    hygiene rules that flagged it (`hygiene`)."""
    rows = dict(
        (c.id, (c, name))
        for c, name in session.execute(
            select(Candidate, Policy.name).join(Policy).where(Candidate.id.in_(task.candidate_ids))
        )
    )
    candidates = [
        {"letter": LETTERS[k], "policy": rows[cid][1], "completion": rows[cid][0].completion}
        for k, cid in enumerate(task.candidate_ids)
    ]
    query = (
        live_judgments_query(task.campaign_id)
        .where(Judgment.task_id == task.id)
        .add_columns(Rater.name)
        .join(Rater, Rater.id == Judgment.rater_id)
    )
    answers = [
        {
            "rater": name,
            "answer": describe_answer(task.kind, j),
            "rationale": j.rationale or "",
            "flags": list(j.flags or []),
            "seconds": j.seconds_spent,
            "edit": j.edit,
        }
        for j, name in session.execute(query)
    ]
    spec = spec_of(session.get(Campaign, task.campaign_id))
    choices = {"ranking": list(range(1, len(candidates) + 1)), "rating": list(range(1, spec.rating_points + 1))}.get(
        task.kind, []
    )
    return ReviewItem(
        task_id=task.id,
        kind=task.kind,
        prompt=session.get(Prompt, task.prompt_id).messages,
        candidates=candidates,
        answers=answers,
        score_choices=choices,
        hygiene=list(hygiene),
    )


def describe_answer(kind: str, answer) -> str:
    """A judgment or adjudication in the review page's letters: "A better", "Both bad", "A: 1 · B: 2"."""
    if kind == "pairwise" or answer.both_bad:
        return choice_of(answer.preference, answer.both_bad)
    scores = answer.ranks if kind == "ranking" else answer.ratings
    return " · ".join(f"{LETTERS[k]}: {score}" for k, score in enumerate(scores))


def pairwise_answer(choice: str) -> dict:
    """The canonical answer of a pairwise choice label ("A better", "Both bad"...); `AdjudicationError` for others."""
    try:
        return answer_of(choice)
    except ValueError as error:
        raise AdjudicationError(str(error)) from None


def adjudicate(
    *,
    session,
    campaign: Campaign,
    reviewer: Rater,
    task_id: int,
    preference: int | None = None,
    both_bad: bool = False,
    ranks: list[int] | None = None,
    ratings: list[int] | None = None,
    note: str = "",
) -> Adjudication:
    """Store the reviewer's final answer (canonical order) for a pool task of `campaign`, with an audit event."""
    if reviewer.role not in STAFF_ROLES:
        raise PermissionError("adjudicating is for reviewers and admins")
    task = session.get(Task, task_id)
    if task is None or task.campaign_id != campaign.id:
        raise AdjudicationError(f"task {task_id} is not a task of campaign '{campaign.name}'")
    if task.is_gold or task.source != "pool":
        raise AdjudicationError(
            f"task {task_id} is a {'gold task' if task.is_gold else 'battle'}: only pool tasks are adjudicated"
        )
    spec = spec_of(campaign)
    if both_bad and not (spec.allow_both_bad and task.kind == "pairwise"):
        raise AdjudicationError("this campaign does not offer 'both bad'")
    check_answer(task, preference=preference, both_bad=both_bad, ranks=ranks, ratings=ratings)
    if task.kind == "ranking" and min(ranks) != 1:
        raise AdjudicationError(f"rank the best candidate 1 (ties share a rank), got {ranks}")
    if task.kind == "rating" and not all(1 <= r <= spec.rating_points for r in ratings):
        raise AdjudicationError(f"ratings must be integers from 1 to {spec.rating_points}, got {ratings}")
    answer = {
        "pairwise": {"preference": None if both_bad else preference, "both_bad": both_bad},
        "ranking": {"ranks": ranks},
        "rating": {"ratings": ratings},
    }[task.kind]
    adjudication = Adjudication(task_id=task.id, reviewer_id=reviewer.id, note=note.strip(), **answer)
    session.add(adjudication)
    session.flush()
    record_event(
        session=session,
        action="task.adjudicated",
        rater=reviewer,
        campaign=campaign,
        task_id=task.id,
        adjudication_id=adjudication.id,
    )
    return adjudication


# What the review tab calls: one transaction each, the reviewer's role checked on the server.


def next_review(
    sessions, *, campaign: str, reviewer_name: str, passed: list[int] = (), message: str = ""
) -> ReviewPage:
    """The oldest task of the review queue not in `passed` (put off this session); `PermissionError` for raters."""
    with sessions.begin() as session:
        _staff(session, reviewer_name)
        stored_campaign = campaign_by_name(session=session, name=campaign)
        flagged = flagged_tasks(session, stored_campaign)
        queue = review_queue(session, stored_campaign, flagged)
        pending = [task_id for task_id in queue if task_id not in set(passed)]
        if not pending:
            more = f" ({len(queue)} put off for now: reload the queue to see them)" if queue else ""
            return ReviewPage(None, len(queue), f"{message} Nothing waiting for review{more}.".strip())
        item = review_item(session, session.get(Task, pending[0]), hygiene=flagged.get(pending[0], []))
        return ReviewPage(item, len(queue), message)


def submit_adjudication(
    sessions,
    *,
    campaign: str,
    reviewer_name: str,
    task_id: int | None,
    choice: str | None = None,
    scores: list[int | None] | None = None,
    note: str = "",
    passed: list[int] = (),
) -> ReviewPage:
    """Adjudicate a task with a pairwise `choice` label or `scores` (ranks or ratings, A first); then the next task."""
    with sessions.begin() as session:
        reviewer = _staff(session, reviewer_name)
        if task_id is None:
            raise AdjudicationError("no task to adjudicate: load the queue first")
        stored_campaign = campaign_by_name(session=session, name=campaign)
        task = session.get(Task, task_id)
        kind = task.kind if task is not None else stored_campaign.kind
        if kind == "pairwise":
            if not choice:
                raise AdjudicationError("choose an answer before saving")
            answer = pairwise_answer(choice)
        else:
            if not scores or any(score is None for score in scores):
                raise AdjudicationError(f"give every candidate a {'rank' if kind == 'ranking' else 'rating'}")
            answer = {"ranks" if kind == "ranking" else "ratings": [int(score) for score in scores]}
        adjudicate(session=session, campaign=stored_campaign, reviewer=reviewer, task_id=task_id, note=note, **answer)
    return next_review(
        sessions,
        campaign=campaign,
        reviewer_name=reviewer_name,
        passed=passed,
        message=f"Saved the decision on task {task_id}.",
    )


def _staff(session, name: str) -> Rater:
    return require_role(session=session, name=name, roles=STAFF_ROLES, what="the review queue")
