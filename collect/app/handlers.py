"""What the rater app does, as plain functions over the store: no Gradio here, so tests call them directly.

Each function runs in one transaction (`sessions.begin()`) that commits before it returns,
so what the page shows next is what is stored. A rater acts only on their own
assignments: `collect.services.scheduling` checks that each assignment id belongs to them.
"""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from collect.app.display import escaped_chat, prelabel_after_vote_line, response_text
from collect.domain.answers import answer_of
from collect.services.campaign_cache import campaign_spec
from collect.services.free_tasks import tasks_left_for
from collect.services.read_models import campaign_stats, prelabel_after_vote, task_view
from collect.services.scheduling import next_task, skip_task, submit_judgment, undo_last
from collect.store import (
    STAFF_ROLES,
    Assignment,
    Campaign,
    Judgment,
    StoreError,
    Task,
    campaign_by_name,
    live_judgments_per_rater,
    live_judgments_query,
    rater_by_name,
    require_role,
)
from collect.store.models import utcnow


@dataclass
class RaterPage:
    """What the rater tab shows after an action: a task (None when nothing is left for them), progress, a message."""

    assignment_id: int | None = None
    prompt: list[dict] = field(default_factory=list)  # chat messages, HTML escaped
    responses: list[str] = field(default_factory=list)  # plain text, in the order shown (A, B, ...)
    progress: dict = field(default_factory=dict)  # today, campaign, left
    message: str = ""
    score_name: str = ""  # ranking and rating tasks: what each response gets ("rank (1 = best)", "rating")
    score_choices: list[int] = field(default_factory=list)  # ... and the values it may take
    # The model's guess on the task shown ({"label": "A", "confidence": 0.87}): only where the campaign shows it
    # before the vote (`TaskView.prelabel`), so a hidden or after-the-vote guess never reaches the page here.
    prelabel: dict | None = None


def role_of(sessions, rater_name: str) -> str:
    """The role (rater, reviewer, admin) of the logged-in rater."""
    with sessions.begin() as session:
        return rater_by_name(session=session, name=rater_name).role


def show_next(sessions, *, campaign: str, rater_name: str, message: str = "") -> RaterPage:
    """The rater's current lease, or a newly leased task; an empty page when the pool has nothing for them."""
    with sessions.begin() as session:
        rater = rater_by_name(session=session, name=rater_name)
        stored_campaign = campaign_by_name(session=session, name=campaign)
        assignment = next_task(session=session, campaign=stored_campaign, rater=rater)
        return _page(session, stored_campaign, rater, assignment, message)


def judge(
    sessions,
    *,
    campaign: str,
    rater_name: str,
    assignment_id: int | None,
    choice: str,
    rationale: str = "",
    flags: list[str] | None = None,
    seconds_spent: float | None = None,
    edit: str = "",
) -> RaterPage:
    """Store the rater's answer (`choice`: a label of the pairwise scale or "Both bad"), then show the next task.

    `edit` is the rater's improved version of the better response. A refused answer (e.g. a
    rationale the campaign requires is missing) keeps the task on screen with the reason. Where the campaign
    shows pre-labels (`shown`, `after_vote`), the saved message names the model's guess on the task just answered.
    """
    if assignment_id is None:
        return show_next(sessions, campaign=campaign, rater_name=rater_name, message="No task to answer.")
    answer = answer_of(choice)
    try:
        with sessions.begin() as session:
            rater = rater_by_name(session=session, name=rater_name)
            judgment = submit_judgment(
                session=session,
                rater=rater,
                assignment_id=assignment_id,
                rationale=rationale.strip(),
                flags=flags or [],
                seconds_spent=seconds_spent,
                edit=edit,
                **answer,
            )
            guess = _guess_after_vote(session, judgment)
    except StoreError as error:
        return show_next(sessions, campaign=campaign, rater_name=rater_name, message=str(error))
    saved = f"Saved: {choice}" + (", with your improved response." if edit.strip() else ".")
    if guess is not None:  # the rater has given their answer: the model's can no longer anchor it
        saved = f"{saved} {prelabel_after_vote_line(guess)}"
    return show_next(sessions, campaign=campaign, rater_name=rater_name, message=saved)


def _guess_after_vote(session, judgment: Judgment) -> dict | None:
    # The pre-label of the task just answered, as that rater saw its candidates; None where the campaign hides it.
    task = session.get(Task, judgment.task_id)
    spec = campaign_spec(session.get(Campaign, task.campaign_id))
    return prelabel_after_vote(spec, task, session.get(Assignment, judgment.assignment_id))


def score(
    sessions,
    *,
    campaign: str,
    rater_name: str,
    assignment_id: int | None,
    scores: list[int | None],
    rationale: str = "",
    flags: list[str] | None = None,
    seconds_spent: float | None = None,
) -> RaterPage:
    """Store a ranking (1 = best, ties share a rank) or a rating of each response, in the order shown; next task.

    An incomplete or impossible ranking keeps the task on screen with a message saying what to fix.
    """
    if assignment_id is None:
        return show_next(sessions, campaign=campaign, rater_name=rater_name, message="No task to answer.")
    try:
        with sessions.begin() as session:
            rater = rater_by_name(session=session, name=rater_name)
            kind = campaign_by_name(session=session, name=campaign).kind
            problem = score_problem(kind, scores)
            if problem is None:
                submit_judgment(
                    session=session,
                    rater=rater,
                    assignment_id=assignment_id,
                    rationale=rationale.strip(),
                    flags=flags or [],
                    seconds_spent=seconds_spent,
                    **{"ranks" if kind == "ranking" else "ratings": [int(s) for s in scores]},
                )
    except StoreError as error:
        problem = str(error)
    message = problem or ("Saved your ranking." if kind == "ranking" else "Saved your ratings.")
    return show_next(sessions, campaign=campaign, rater_name=rater_name, message=message)


def score_problem(kind: str, scores: list[int | None]) -> str | None:
    """Why a ranking or rating cannot be submitted yet (a response left out, no rank 1...), or None."""
    if not scores or any(value is None for value in scores):
        return f"Give every response a {'rank' if kind == 'ranking' else 'rating'} before submitting."
    if kind == "ranking" and min(scores) != 1:
        return "Rank the best response 1 (responses that tie share a rank)."
    return None


def skip(sessions, *, campaign: str, rater_name: str, assignment_id: int | None) -> RaterPage:
    """Pass on the task shown (it is not offered to this rater again), then show the next one."""
    message = "No task to skip."
    if assignment_id is not None:
        try:
            with sessions.begin() as session:
                rater = rater_by_name(session=session, name=rater_name)
                skip_task(session=session, rater=rater, assignment_id=assignment_id)
            message = "Skipped."
        except StoreError as error:
            message = str(error)
    return show_next(sessions, campaign=campaign, rater_name=rater_name, message=message)


def undo(sessions, *, campaign: str, rater_name: str) -> RaterPage:
    """Take back the rater's latest judgment or skip and show its task again (pressed again: the one before)."""
    try:
        with sessions.begin() as session:
            rater = rater_by_name(session=session, name=rater_name)
            stored_campaign = campaign_by_name(session=session, name=campaign)
            assignment = undo_last(session=session, campaign=stored_campaign, rater=rater)
            return _page(session, stored_campaign, rater, assignment, "Undone: this task is back for you.")
    except StoreError as error:
        return show_next(sessions, campaign=campaign, rater_name=rater_name, message=str(error))


def _page(session, campaign, rater, assignment, message: str) -> RaterPage:
    progress = rater_progress(session, campaign, rater)
    if assignment is None:
        done = "Nothing left for you in this campaign. Thank you!"
        return RaterPage(progress=progress, message=f"{message} {done}".strip())
    view = task_view(session, assignment)
    page = RaterPage(
        assignment_id=assignment.id,
        prompt=escaped_chat(view.prompt),
        responses=[response_text(c["completion"]) for c in view.candidates],
        progress=progress,
        message=message,
        prelabel=view.prelabel,
    )
    if view.kind == "ranking":
        page.score_name, page.score_choices = "rank (1 = best)", list(range(1, len(view.candidates) + 1))
    elif view.kind == "rating":
        page.score_name, page.score_choices = "rating", list(range(1, view.options["rating_points"] + 1))
    return page


def rater_progress(session, campaign, rater, *, now: datetime | None = None) -> dict:
    """The rater's live judgments of the campaign's tasks today (UTC) and in all, their arena votes apart,
    and the tasks still left for them."""
    now = now or utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    mine = live_judgments_query(campaign.id).where(Judgment.rater_id == rater.id).order_by(None)
    pool = mine.where(Task.source == "pool")

    def counted(query) -> int:
        return session.scalar(select(func.count()).select_from(query.subquery()))

    return {
        "today": counted(pool.where(Judgment.created_at >= midnight)),
        "campaign": counted(pool),
        "arena": counted(mine.where(Task.source == "arena")),
        "left": tasks_left_for(session=session, campaign=campaign, rater=rater, now=now),
    }


def campaign_overview(sessions, *, campaign: str, rater_name: str) -> tuple[dict, dict[str, int]]:
    """Campaign progress and live judgments per rater, for reviewers and admins; `PermissionError` for raters."""
    with sessions.begin() as session:
        rater = require_role(session=session, name=rater_name, roles=STAFF_ROLES, what="the campaign overview")
        stored_campaign = campaign_by_name(session=session, name=campaign)
        per_rater = live_judgments_per_rater(session, stored_campaign.id)
        return campaign_stats(session, stored_campaign, rater), per_rater
