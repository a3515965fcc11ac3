"""`plumb collect clean`: the hygiene rules applied to a campaign already in the store.

The rows are the campaign's prompts that have pool tasks (or no task yet), each with the
candidates its pool tasks compare. A drop takes a task out of the pool: its `source` becomes
`dropped`, so the scheduler never serves it, and nothing is deleted. A task that holds a
judgment (live, edited or undone) or is leased to a rater right now is flagged instead, checked
again in the transaction that drops, so a judgment that lands meanwhile is not lost either.
Arena battles and tasks already out of the pool are left alone: cleaning twice changes
nothing the second time. A dropped candidate takes out every task that shows it: in a ranking
or rating campaign, the whole task of its prompt (no smaller task is built in its place).
"""

import logging
from collections import defaultdict
from pathlib import Path

from sqlalchemy import select, update

from collect.domain.hygiene import HygieneSettings, Row
from collect.domain.hygiene_report import build_report, decide, flags_to_store, resolve_tasks
from collect.services.hygiene import CHUNK, completion_text, record_flag, run_rules, save_report, stored_flags
from collect.store import Assignment, Candidate, Judgment, Prompt, Task, campaign_by_name, record_event
from collect.store.models import utcnow

logger = logging.getLogger(__name__)

DROPPED = "dropped"  # the `source` of a task hygiene took out of the pool (the pool's tasks are "pool")
CLEAN_EVENT = "hygiene.cleaned"


def clean_campaign(sessions, name: str, settings: HygieneSettings, *, output_dir: str | Path) -> tuple[dict, Path]:
    """Apply the hygiene rules to campaign `name`: drop and flag its pool tasks as `settings` say, write the
    report into `output_dir`; returns (report, its path)."""
    with sessions() as session:
        campaign = campaign_by_name(session=session, name=name)
        rows, prompt_ids, candidate_ids, pool = _campaign_rows(session, campaign)
        busy = busy_tasks(session, [task_id for task_id, *_ in pool])
        already = stored_flags(session, campaign)
    findings = run_rules(rows, settings, where=f"campaign '{name}'")
    decisions = decide(findings, settings)
    outcomes = resolve_tasks(decisions, pool, busy)
    with sessions.begin() as session:
        campaign = campaign_by_name(session=session, name=name)
        planned = {task for found in outcomes.values() for task, outcome in found.items() if outcome == "dropped"}
        # A rater may have judged or leased one of them since the read: flag it instead.
        late = busy_tasks(session, sorted(planned))
        for found in outcomes.values():
            for task in found.keys() & late:
                found[task] = "flagged_instead_of_dropped"
        dropped = sorted(planned - late)
        for start in range(0, len(dropped), CHUNK):
            part = dropped[start : start + CHUNK]
            session.execute(
                update(Task).where(Task.id.in_(part), Task.source == "pool").values(source=DROPPED),
                execution_options={"synchronize_session": False},
            )
        new_flags = 0
        for (r, c), flag in flags_to_store(decisions, outcomes).items():
            key = (prompt_ids[r], None if c is None else candidate_ids[r][c])
            if set(flag["rules"]) <= already.get(key, set()):
                continue  # recorded by an earlier import or clean
            record_flag(session, campaign, *key, flag, by="clean")
            new_flags += 1
        every = {task: outcome for found in outcomes.values() for task, outcome in found.items()}
        totals = {k: sum(1 for v in every.values() if v == k) for k in ("flagged", "flagged_instead_of_dropped")}
        record_event(session=session, action=CLEAN_EVENT, campaign=campaign, dropped=len(dropped), **totals)
    report = build_report(
        rows,
        findings,
        outcomes,
        settings,
        units="tasks",
        mode="clean",
        campaign=name,
        prompts=len(rows),
        pool_tasks=len(pool),
        busy_tasks=len(busy | late),
        new_flags=new_flags,
        findings_without_task=sum(1 for f in findings if not outcomes.get((f.row, f.candidate))),
    )
    path = save_report(report, output_dir, name)
    logger.info("Cleaned campaign '%s': %d tasks out of the pool; report %s", name, len(dropped), path)
    return report, path


def _campaign_rows(session, campaign):
    """(rows, prompt id per row, candidate ids per row, pool tasks as (task id, row, candidate indices))."""
    tasks = session.execute(
        select(Task.id, Task.prompt_id, Task.candidate_ids, Task.source)
        .where(Task.campaign_id == campaign.id)
        .order_by(Task.id)
    ).all()
    in_pool = defaultdict(set)  # prompt id -> candidate ids its pool tasks compare
    elsewhere = set()  # prompts of arena battles or of tasks already out of the pool
    for _, prompt_id, ids, source in tasks:
        if source == "pool":
            in_pool[prompt_id].update(ids)
        else:
            elsewhere.add(prompt_id)
    answers = defaultdict(list)
    query = (
        select(Candidate.id, Candidate.prompt_id, Candidate.completion)
        .join(Prompt, Prompt.id == Candidate.prompt_id)
        .where(Prompt.campaign_id == campaign.id)
        .order_by(Candidate.id)
    )
    for cid, pid, completion in session.execute(query):
        if pid in in_pool and cid not in in_pool[pid]:
            continue  # a candidate whose tasks all left the pool
        answers[pid].append((cid, completion_text(completion)))
    prompts = session.execute(
        select(Prompt.id, Prompt.external_id, Prompt.messages)
        .where(Prompt.campaign_id == campaign.id)
        .order_by(Prompt.id)
    ).all()
    rows, prompt_ids, candidate_ids, row_of = [], [], [], {}
    for pid, external, messages in prompts:
        if pid not in in_pool and pid in elsewhere:
            continue
        row_of[pid] = len(rows)
        rows.append(Row(messages, [text for _, text in answers[pid]], label=f"prompt '{external}'"))
        prompt_ids.append(pid)
        candidate_ids.append([cid for cid, _ in answers[pid]])
    position = [{cid: c for c, cid in enumerate(ids)} for ids in candidate_ids]
    pool = [
        (task_id, row_of[pid], [position[row_of[pid]][cid] for cid in ids])
        for task_id, pid, ids, source in tasks
        if source == "pool"
    ]
    return rows, prompt_ids, candidate_ids, pool


def busy_tasks(session, task_ids: list[int]) -> set[int]:
    """The tasks among `task_ids` that hold any judgment (also undone or edited ones) or an open lease."""
    busy, now = set(), utcnow()
    for start in range(0, len(task_ids), CHUNK):
        part = task_ids[start : start + CHUNK]
        busy.update(session.scalars(select(Judgment.task_id).where(Judgment.task_id.in_(part))))
        busy.update(
            session.scalars(
                select(Assignment.task_id).where(
                    Assignment.task_id.in_(part), Assignment.state == "leased", Assignment.expires_at > now
                )
            )
        )
    return busy
