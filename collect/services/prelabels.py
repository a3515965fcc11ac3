"""A reward model's view of a campaign, written offline: each task's doubt (the `uncertainty` strategy's
priority), its pre-label (the answer the model prefers, and how sure it is), and auto-labels.

`plumb collect score` runs this between rounds, never on the request path: the app serves
tasks by the stored priority and shows the stored pre-label without loading a model.
A pairwise task the model is at least `auto_label_above` sure of, and that no person has
judged or holds, is answered by a rater of kind `model`, except an audit share that still
goes to people so the model's answers keep being checked against theirs; an auto-labelled
task needs no further judgment. The scorer and the embedder are callables, so tests can
hand-build them and the command can pass a reward model or an ensemble.
"""

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import bindparam, select, update

from collect.domain.campaign import spec_of
from collect.services.simulation import pool_candidates
from collect.store import Assignment, Campaign, Prompt, Rater, StoreError, Task, campaign_by_name
from collect.store.judgments import judge_without_lease
from collect.store.models import utcnow
from collect.store.raters import create_rater

logger = logging.getLogger(__name__)

# scorer(conversations) -> scores, shape (models, conversations); embedder(prompts) -> (prompts, dims).
Scorer = Callable[[list[list[dict]]], np.ndarray]
Embedder = Callable[[list[list[dict]]], np.ndarray]


@dataclass
class TaskScore:
    """What the model thinks of one task: its doubt, and for a pairwise task the answer it prefers and how surely."""

    task_id: int
    prompt_id: int
    doubt: float
    prelabel: dict | None = None  # {"preferred": canonical index, "confidence": 0.5..1, "model": name}


def task_scores(tasks: list, scores: np.ndarray, index: dict[int, int], model: str) -> list[TaskScore]:
    """Each task's doubt and pre-label from its candidates' scores (`index`: candidate id -> column of `scores`)."""
    from reward.uncertainty import doubt, prelabel, ranking_doubt

    scores = np.atleast_2d(scores)
    out = []
    for task in tasks:
        columns = scores[:, [index[cid] for cid in task.candidate_ids]]
        if task.kind == "pairwise":
            margins = columns[:, 0] - columns[:, 1]
            first, confidence = prelabel(margins[:, None])
            label = {"preferred": 0 if first[0] else 1, "confidence": round(float(confidence[0]), 4), "model": model}
            out.append(TaskScore(task.id, task.prompt_id, float(doubt(margins[:, None])[0]), label))
        else:  # a ranking or rating task: how close its closest two candidates are
            out.append(TaskScore(task.id, task.prompt_id, float(ranking_doubt(columns))))
    return out


def priorities(scored: list[TaskScore], embeddings: dict[int, np.ndarray] | None, *, clusters: int, seed: int):
    """Priority per task id: most doubtful first, interleaving prompt clusters when there are embeddings."""
    from reward.uncertainty import diverse_priorities

    doubts = np.array([s.doubt for s in scored])
    vectors = np.stack([embeddings[s.prompt_id] for s in scored]) if embeddings and scored else None
    values = diverse_priorities(doubts, vectors, clusters=clusters, seed=seed)
    return {s.task_id: float(v) for s, v in zip(scored, values)}


# Bulk writes, one statement for all tasks: bind names differ from the columns they set.
_WRITE = update(Task.__table__).where(Task.__table__.c.id == bindparam("tid"))


def write_scores(session, scored: list[TaskScore], task_priority: dict[int, float]) -> None:
    """Store each task's priority and pre-label (one executemany; a task without a pre-label keeps none)."""
    rows = [{"tid": s.task_id, "p": task_priority[s.task_id], "label": s.prelabel} for s in scored]
    if rows:
        session.connection().execute(_WRITE.values(priority=bindparam("p"), prelabel=bindparam("label")), rows)


def strength(confidence: float) -> int:
    """The judgment strength (1..3) a model's confidence stands for: 3 from 0.95, 2 from 0.8, else 1."""
    return 3 if confidence >= 0.95 else 2 if confidence >= 0.8 else 1


def model_rater(session, name: str) -> Rater:
    """The rater of kind `model` that auto-labels carry, created when new; a person of that name is an error."""
    rater = session.scalar(select(Rater).where(Rater.name == name))
    if rater is None:
        return create_rater(session=session, name=name, kind="model")[0]
    if rater.kind != "model":
        raise StoreError(f"rater '{name}' exists and is not a model (kind {rater.kind}): rename them first")
    return rater


def in_audit(task_id: int, share: float, seed: int) -> bool:
    """Whether a sure task still goes to people: a draw per task, the same on every run with this seed."""
    return random.Random(f"{seed}:audit:{task_id}").random() < share


def auto_label(session, campaign: Campaign, *, above: float, audit_share: float, model: str, seed: int = 0) -> dict:
    """Answer, as rater `model`, every pairwise pool task the model is at least `above` sure of that nobody has
    judged or holds, except the audit share; returns the counts."""
    now = utcnow()
    held = select(Assignment.task_id).where(Assignment.state == "leased", Assignment.expires_at > now)
    tasks = session.scalars(
        select(Task).where(
            Task.campaign_id == campaign.id,
            Task.source == "pool",
            Task.kind == "pairwise",
            Task.is_gold.is_(False),
            Task.judgment_count == 0,
            Task.id.not_in(held),
        )
    )
    sure = [task for task in tasks if task.prelabel and task.prelabel["confidence"] >= above]
    labelled = [task for task in sure if not in_audit(task.id, audit_share, seed)]
    rater = model_rater(session, model) if labelled else None
    for task in labelled:
        sign = 1 if task.prelabel["preferred"] == 0 else -1
        judge_without_lease(session, task, rater.id, now=now, preference=sign * strength(task.prelabel["confidence"]))
        task.target_overlap = 1  # the model's answer stands for the task: no person is asked for it
    return {"sure": len(sure), "auto_labelled": len(labelled), "audit": len(sure) - len(labelled)}


def model_name(spec: str) -> str:
    """The model rater's name for a reward model spec: `model:` and its folder name (`+N` for an ensemble)."""
    paths = [part.strip() for part in spec.split(",") if part.strip()]
    name = f"model:{Path(paths[0]).name or paths[0]}" + (f"+{len(paths) - 1}" if len(paths) > 1 else "")
    return name[:200]


def score_campaign(
    sessions,
    campaign_name: str,
    *,
    scorer: Scorer,
    model: str,
    embedder: Embedder | None = None,
    clusters: int = 0,
    auto_label_above: float | None = None,
    audit_share: float = 0.1,
    seed: int = 0,
) -> dict:
    """Score the campaign's pool tasks, store their priorities and pre-labels, then auto-label what the model is sure
    of (when `auto_label_above` is set); returns what was done."""
    with sessions.begin() as session:
        campaign = campaign_by_name(session=session, name=campaign_name)
        tasks = list(
            session.scalars(
                select(Task).where(Task.campaign_id == campaign.id, Task.source == "pool", Task.is_gold.is_(False))
            )
        )
        candidates = pool_candidates(session, campaign)
        prompts = dict(
            session.execute(select(Prompt.id, Prompt.messages).where(Prompt.campaign_id == campaign.id)).all()
        )
    if not tasks:
        raise StoreError(f"campaign '{campaign_name}' has no tasks to score: import prompts with candidates")

    index = {cid: i for i, cid in enumerate(candidates)}
    scores = np.atleast_2d(np.asarray(scorer([conversation for conversation, _ in candidates.values()]), dtype=float))
    if scores.shape[1] != len(candidates):
        raise StoreError(f"the scorer gave {scores.shape[1]} scores for {len(candidates)} candidates")
    scored = task_scores(tasks, scores, index, model)
    embeddings = None
    if embedder is not None and clusters > 1:
        used = sorted({task.prompt_id for task in tasks})
        embeddings = dict(zip(used, np.asarray(embedder([prompts[pid] for pid in used]))))
    task_priority = priorities(scored, embeddings, clusters=clusters, seed=seed)

    with sessions.begin() as session:
        write_scores(session, scored, task_priority)
        campaign = session.get(Campaign, campaign.id)
        labels = {"sure": 0, "auto_labelled": 0, "audit": 0}
        if auto_label_above is not None:
            labels = auto_label(
                session, campaign, above=auto_label_above, audit_share=audit_share, model=model, seed=seed
            )
    pairwise = [s.prelabel["confidence"] for s in scored if s.prelabel]
    summary = {
        "campaign": campaign_name,
        "model": model,
        "models_in_ensemble": int(scores.shape[0]),
        "tasks_scored": len(scored),
        "prelabels": len(pairwise),
        "mean_confidence": round(float(np.mean(pairwise)), 4) if pairwise else None,
        "clusters": clusters if embeddings else 0,
        "strategy": spec_of(campaign).strategy,
        **labels,
    }
    logger.info("Scored campaign '%s': %s", campaign_name, summary)
    return summary
