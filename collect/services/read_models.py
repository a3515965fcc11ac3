"""What raters and staff are shown, read from the store: the REST API, the app and `/metrics` share these.

`task_view` is an assignment as its rater sees it (candidates in the order of that
assignment, never a policy's name or a gold answer); `campaign_stats` counts a campaign's
progress. Both read only, inside the caller's transaction.
"""

from datetime import timezone

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import bindparam, func, select

from collect.services.campaign_cache import campaign_spec
from collect.store import Assignment, Campaign, Candidate, Prompt, Rater, Task, live_judgments_query

LABELS = "ABCDEFGHIJ"


class TaskView(BaseModel):
    """A leased task as a rater sees it: candidates in the randomized order of this assignment."""

    assignment_id: int
    task_id: int
    kind: str
    prompt: list[dict]
    candidates: list[dict]  # {"label": "A", "completion": [messages]}
    expires_at: AwareDatetime  # UTC, with its offset: the spec says date-time, which needs one
    options: dict  # the answer scale, flags, rationale rule and guidelines of the campaign
    # The reward model's answer ({"label": "A", "confidence": 0.87}), only where the campaign shows it before the vote.
    prelabel: dict | None = None


# What a rater is shown of a task, read as plain rows (no ORM objects to build) by statements built once.
_SHOWN_TASK = (
    select(Task.id, Task.kind, Task.candidate_ids, Task.campaign_id, Task.prelabel, Prompt.messages)
    .join_from(Task, Prompt, Prompt.id == Task.prompt_id)
    .where(Task.id == bindparam("task_id"))
)
_COMPLETIONS = select(Candidate.id, Candidate.completion).where(Candidate.id.in_(bindparam("ids", expanding=True)))


def task_view(session, assignment: Assignment) -> TaskView:
    """What the rater is shown for an assignment (never the policies' names or a gold answer)."""
    session.flush()  # the reads below go to the connection, past the session's autoflush
    connection = session.connection()
    task = connection.execute(_SHOWN_TASK, {"task_id": assignment.task_id}).one()
    completions = dict(connection.execute(_COMPLETIONS, {"ids": list(task.candidate_ids)}).all())
    shown = [completions[task.candidate_ids[index]] for index in assignment.candidate_order]
    spec = campaign_spec(session.get(Campaign, task.campaign_id))  # the caller's campaign, when it holds it
    options = {"flags": list(spec.flags), "rationale": spec.rationale, "guidelines": spec.guidelines}
    if task.kind == "pairwise":
        options.update(scale=spec.scale(), allow_edits=spec.allow_edits)
    elif task.kind == "rating":
        options["rating_points"] = spec.rating_points
    return TaskView(
        assignment_id=assignment.id,
        task_id=task.id,
        kind=task.kind,
        prompt=task.messages,
        expires_at=assignment.expires_at.replace(tzinfo=timezone.utc),  # stored naive, in UTC
        candidates=[{"label": LABELS[i], "completion": completion} for i, completion in enumerate(shown)],
        options=options,
        prelabel=shown_prelabel(task.prelabel, assignment.candidate_order) if spec.prelabels == "shown" else None,
    )


def shown_prelabel(prelabel: dict | None, candidate_order: list[int]) -> dict | None:
    """A task's pre-label as this rater sees it: the label of the candidate the model preferred, and how sure it was."""
    if not prelabel:
        return None
    return {"label": LABELS[candidate_order.index(prelabel["preferred"])], "confidence": prelabel["confidence"]}


def prelabel_after_vote(spec, task: Task, assignment: Assignment) -> dict | None:
    """The pre-label to show once the rater has answered, where the campaign shows it at all (`shown`, `after_vote`)."""
    if spec.prelabels == "hidden":
        return None
    return shown_prelabel(task.prelabel, assignment.candidate_order)


def campaign_stats(session, campaign: Campaign, rater: Rater | None = None) -> dict:
    """Counts that show a campaign's progress, and (given a rater) their own number of live judgments."""
    in_campaign = Task.campaign_id == campaign.id
    live = live_judgments_query(campaign.id).subquery()
    return {
        "campaign": campaign.name,
        "tasks": session.scalar(select(func.count(Task.id)).where(in_campaign)),
        "gold_tasks": session.scalar(select(func.count(Task.id)).where(in_campaign, Task.is_gold.is_(True))),
        "complete_tasks": session.scalar(
            select(func.count(Task.id)).where(
                in_campaign, Task.is_gold.is_(False), Task.judgment_count >= Task.target_overlap
            )
        ),
        "judgments": session.scalar(select(func.count()).select_from(live)),
        "raters": session.scalar(select(func.count(func.distinct(live.c.rater_id)))),
        "my_judgments": session.scalar(select(func.count()).select_from(live).where(live.c.rater_id == rater.id))
        if rater is not None
        else None,
    }
