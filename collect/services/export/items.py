"""A campaign's tasks as the export, the quality report and the leaderboard read them: one `TaskItem` per task."""

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from collect.store import (
    Adjudication,
    Assignment,
    Candidate,
    Judgment,
    Policy,
    Prompt,
    Rater,
    Task,
    live_judgments_query,
)


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
    finished: list[bool] = field(
        default_factory=list
    )  # per candidate: False when the arena vote came before it had finished
    rater_kinds: dict[str, str] = field(default_factory=dict)  # rater name -> kind (human, simulated, model)
    auto_labelled: bool = False  # a model's judgments were taken out of `judgments` (`drop_model_labels`)


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
