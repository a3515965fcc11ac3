"""Stores with something in them: seeded campaigns and raters, judgments written directly, arena battles, reads."""

from sqlalchemy import select

from collect.domain.campaign import as_definition, campaign_from_dict
from collect.services.scheduling import next_task
from collect.store import (
    Assignment,
    Judgment,
    Rater,
    Task,
    add_candidate,
    add_prompt,
    build_tasks,
    campaign_by_name,
    create_campaign,
    create_rater,
    ensure_policy,
    make_engine,
    rater_by_name,
    record_judgment,
    session_factory,
    upgrade,
)

PASSWORDS = {"ana": "ana-secret", "ben": "ben-secret", "rev": "rev-secret"}  # the accounts of `make_store`


def seed_campaign(sessions, *, name="demo", kind="pairwise", prompts=4, policies=("sft", "dpo"), gold=0, **settings):
    """Store a campaign with `prompts` prompts, one candidate per policy each, and its tasks; returns its name.

    The first `gold` prompts become gold tasks whose first policy is the better one.
    """
    spec = campaign_from_dict({"name": name, "kind": kind, **settings})
    with sessions.begin() as session:
        campaign = create_campaign(session=session, name=name, kind=kind, definition=as_definition(spec))
        stored_policies = [ensure_policy(session=session, campaign=campaign, name=p) for p in policies]
        answers = {}
        for i in range(prompts):
            prompt = add_prompt(
                session=session,
                campaign=campaign,
                external_id=f"p{i}",
                messages=[{"role": "user", "content": f"question {i}"}],
            )
            ids = [
                add_candidate(
                    session=session,
                    prompt=prompt,
                    policy=policy,
                    completion=[{"role": "assistant", "content": f"answer {i} from {policy.name}"}],
                ).id
                for policy in stored_policies
            ]
            if i < gold:
                answers[prompt.id] = {"candidate_ranks": {str(cid): rank for rank, cid in enumerate(ids, start=1)}}
        build_tasks(session=session, campaign=campaign, overlap=spec.raters_per_task, gold_answers=answers)
    return name


def seed_raters(sessions, count: int, *, prefix: str = "rater") -> list[str]:
    """Add `count` raters; returns their names."""
    names = [f"{prefix}{i}" for i in range(count)]
    with sessions.begin() as session:
        for name in names:
            create_rater(session=session, name=name)
    return names


def make_store(url: str, **campaign):
    """A migrated SQLite store with a 3-task campaign 'demo' (pairwise unless `campaign` says otherwise),
    ana and ben (raters) and rev (reviewer), with the `PASSWORDS`: (engine, sessions, API tokens by name)."""
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_campaign(sessions, **{"prompts": 3, "raters_per_task": 1, "max_raters_per_task": 1, **campaign})
    tokens = {}
    with sessions.begin() as session:
        for name, role in (("ana", "rater"), ("ben", "rater"), ("rev", "reviewer")):
            tokens[name] = create_rater(session=session, name=name, role=role, password=PASSWORDS[name])[1]
    return engine, sessions, tokens


def add_attack_task(sessions, attack: str) -> None:
    """A last task of campaign 'demo' whose prompt and both candidates carry HTML that would run if it were rendered."""
    with sessions.begin() as session:
        campaign = campaign_by_name(session=session, name="demo")
        prompt = add_prompt(
            session=session, campaign=campaign, external_id="attack", messages=[{"role": "user", "content": attack}]
        )
        for name in ("sft", "dpo"):
            add_candidate(
                session=session,
                prompt=prompt,
                completion=[{"role": "assistant", "content": attack}],
                policy=ensure_policy(session=session, campaign=campaign, name=name),
            )
        build_tasks(session=session, campaign=campaign, overlap=1)


def judgments_of(sessions, name: str) -> list[Judgment]:
    """Every judgment row of rater `name`, oldest first: superseded ones and undo retractions included."""
    with sessions.begin() as session:
        rater = session.scalar(select(Rater).where(Rater.name == name))
        return session.scalars(select(Judgment).where(Judgment.rater_id == rater.id).order_by(Judgment.id)).all()


def judge(sessions, rater_name: str, task_id: int, **answer) -> None:
    """One judgment in the task's canonical order (preference, both_bad, ranks or ratings; rationale, flags...),
    written to the store directly, past the scheduler."""
    with sessions.begin() as session:
        rater = rater_by_name(session=session, name=rater_name)
        assignment = session.scalar(
            select(Assignment).where(Assignment.task_id == task_id, Assignment.rater_id == rater.id)
        )
        if assignment is None:
            assignment = Assignment(
                task_id=task_id,
                rater_id=rater.id,
                candidate_order=[1, 0],
                expires_at=session.get(Task, task_id).created_at,
            )
            session.add(assignment)
            session.flush()
        record_judgment(session=session, assignment=assignment, **answer)


def campaign_with_reviewer(sessions, **campaign) -> list[int]:
    """Seed campaign 'demo' (gold first task), raters rater0..2, reviewer 'rev', rater 'ana'; returns the task ids."""
    seed_campaign(sessions, prompts=5, gold=1, raters_per_task=2, max_raters_per_task=3, **campaign)
    seed_raters(sessions, 3)
    with sessions.begin() as session:
        create_rater(session=session, name="rev", role="reviewer")
        create_rater(session=session, name="ana", role="rater")
        return session.scalars(select(Task.id).order_by(Task.id)).all()


def work_of_choosing(sessions, rater_name: str, *, campaign: str = "demo") -> int:
    """What leasing the rater's next task costs the database: SQLite VM steps, or PostgreSQL rows read."""
    with sessions.begin() as session:
        rater = rater_by_name(session=session, name=rater_name)
        campaign = campaign_by_name(session=session, name=campaign)
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            steps = [0]
            raw = connection.connection.dbapi_connection

            def count():
                steps[0] += 1

            raw.set_progress_handler(count, 10)
            try:
                assert next_task(session=session, campaign=campaign, rater=rater) is not None
            finally:
                raw.set_progress_handler(None, 10)
            return steps[0]
        # This transaction's own counts, read before it ends (PostgreSQL's per-transaction statistics).
        read = "SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0) FROM pg_stat_xact_user_tables"
        before = connection.exec_driver_sql(read).scalar()
        assert next_task(session=session, campaign=campaign, rater=rater) is not None
        return int(connection.exec_driver_sql(read).scalar() - before)


def margin_scorer(margins: list[float]):
    """A hand-built scorer for `seed_campaign`'s answers: 'answer I from dpo' gets margins[I], sft's answers 0, as the
    one model of `collect.services.prelabels.score_campaign` (shape (1, conversations))."""
    import re

    import numpy as np

    def scorer(conversations):
        scores = []
        for conversation in conversations:
            i, policy = re.match(r"answer (\d+) from (\w+)", conversation[-1]["content"]).groups()
            scores.append(margins[int(i)] if policy == "dpo" else 0.0)
        return np.array([scores])

    return scorer
