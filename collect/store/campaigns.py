"""Campaigns and what they are made of: prompts, policies, candidates and the tasks built from them."""

from itertools import combinations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collect.store.audit import record_event
from collect.store.engine import refresh_statistics
from collect.store.limits import is_storable
from collect.store.models import TASK_KINDS, Campaign, Candidate, Policy, Prompt, StoreError, Task


class CampaignError(StoreError):
    """A campaign, prompt or candidate cannot be stored as asked; the message says why."""


def create_campaign(*, session: Session, name: str, kind: str, definition: dict) -> Campaign:
    """Add a campaign of task `kind` (pairwise, ranking, rating) with its resolved definition."""
    if kind not in TASK_KINDS:
        raise CampaignError(f"unknown task kind '{kind}' (choose one of: {', '.join(TASK_KINDS)})")
    if session.scalar(select(Campaign).where(Campaign.name == name)) is not None:
        raise CampaignError(f"a campaign named '{name}' already exists")
    campaign = Campaign(name=name, kind=kind, definition=definition)
    session.add(campaign)
    session.flush()
    record_event(session=session, action="campaign.created", campaign=campaign, kind=kind)
    return campaign


def campaign_by_name(*, session: Session, name: str) -> Campaign:
    """The campaign called `name`; `CampaignError` when there is none."""
    if not is_storable(name):  # PostgreSQL refuses a NUL in a query: such a name is no campaign's, not a crash
        raise CampaignError(f"no campaign named {name!r}")
    campaign = session.scalar(select(Campaign).where(Campaign.name == name))
    if campaign is None:
        raise CampaignError(f"no campaign named '{name}' (create it with `plumb collect import --campaign FILE`)")
    return campaign


def ensure_policy(*, session: Session, campaign: Campaign, name: str, spec: str = "") -> Policy:
    """The campaign's policy called `name`, added when new."""
    policy = session.scalar(select(Policy).where(Policy.campaign_id == campaign.id, Policy.name == name))
    if policy is None:
        policy = Policy(campaign_id=campaign.id, name=name, spec=spec)
        session.add(policy)
        session.flush()
    return policy


def add_prompt(*, session: Session, campaign: Campaign, external_id: str, messages: list) -> Prompt:
    """Add a prompt (a message list); its `external_id` must be new in this campaign."""
    exists = select(Prompt.id).where(Prompt.campaign_id == campaign.id, Prompt.external_id == external_id)
    if session.scalar(exists) is not None:
        raise CampaignError(f"prompt_id '{external_id}' is already in campaign '{campaign.name}'")
    prompt = Prompt(campaign_id=campaign.id, external_id=external_id, messages=messages)
    session.add(prompt)
    session.flush()
    return prompt


def add_candidate(
    *,
    session: Session,
    prompt: Prompt,
    policy: Policy,
    completion: list,
    settings: dict | None = None,
    sample_index: int = 0,
) -> Candidate:
    """Store one policy's completion (an assistant message list) of a prompt, with its generation settings."""
    candidate = Candidate(
        prompt_id=prompt.id,
        policy_id=policy.id,
        completion=completion,
        settings=settings or {},
        sample_index=sample_index,
    )
    session.add(candidate)
    session.flush()
    return candidate


def build_tasks(
    *, session: Session, campaign: Campaign, overlap: int, gold_answers: dict[int, dict] | None = None
) -> list[Task]:
    """Make tasks for every prompt that has candidates but no task yet; returns the new tasks.

    Pairwise: one task per pair of the prompt's candidates. Ranking: one task with all of
    them (at least 2). Rating: one task with all of them. `gold_answers` maps a prompt's
    id to its known answer, making its tasks gold tasks.
    """
    gold_answers = gold_answers or {}
    has_task = select(Task.prompt_id).where(Task.campaign_id == campaign.id)
    waiting = select(Prompt).where(Prompt.campaign_id == campaign.id, Prompt.id.not_in(has_task)).order_by(Prompt.id)
    tasks = []
    for prompt in session.scalars(waiting):
        candidate_ids = list(
            session.scalars(
                select(Candidate.id).where(Candidate.prompt_id == prompt.id).order_by(Candidate.policy_id, Candidate.id)
            )
        )
        tasks += prompt_tasks(campaign, prompt, candidate_ids, overlap=overlap, gold_answer=gold_answers.get(prompt.id))
    session.add_all(tasks)
    session.flush()
    if tasks:
        refresh_statistics(session)
    return tasks


def prompt_tasks(
    campaign: Campaign, prompt: Prompt, candidate_ids: list[int], *, overlap: int, gold_answer: dict | None = None
) -> list[Task]:
    """A prompt's tasks, not yet added: a pair per two candidates (pairwise), else one of all (a ranking needs 2)."""
    if campaign.kind == "pairwise":
        groups = list(combinations(candidate_ids, 2))
    else:
        groups = [tuple(candidate_ids)] if len(candidate_ids) >= (2 if campaign.kind == "ranking" else 1) else []
    return [
        Task(
            campaign_id=campaign.id,
            prompt_id=prompt.id,
            kind=campaign.kind,
            candidate_ids=list(group),
            target_overlap=overlap,
            is_gold=gold_answer is not None,
            gold_answer=gold_answer,
        )
        for group in groups
    ]


def campaign_counts(*, session: Session, campaign: Campaign) -> dict:
    """How many prompts, candidates and tasks a campaign has."""
    prompt_ids = select(Prompt.id).where(Prompt.campaign_id == campaign.id)
    return {
        "prompts": session.scalar(select(func.count()).select_from(prompt_ids.subquery())),
        "candidates": session.scalar(select(func.count(Candidate.id)).where(Candidate.prompt_id.in_(prompt_ids))),
        "tasks": session.scalar(select(func.count(Task.id)).where(Task.campaign_id == campaign.id)),
    }
