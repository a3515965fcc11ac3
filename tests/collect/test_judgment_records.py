"""`--format judgments`: every answer as the rater saw it, in the records `plumb collect quality` reads."""

import random

import datasets
from sqlalchemy import select

from collect.domain.quality.judgments import judgment_table
from collect.export import main
from collect.services.export.rows import ExportArguments
from collect.services.scheduling import next_task, submit_judgment
from collect.store import (
    Candidate,
    Policy,
    Task,
    campaign_by_name,
    make_engine,
    rater_by_name,
    session_factory,
    upgrade,
)
from tests.support.campaigns import seed_campaign, seed_raters


def test_records_keep_the_shown_order_and_feed_the_quality_tools(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_campaign(sessions, prompts=3, gold=1, gold_share=0.5, raters_per_task=2, max_raters_per_task=2)
    shown_first = {}
    for seed, name in enumerate(seed_raters(sessions, 2)):
        for step in range(3):
            with sessions.begin() as session:
                rater = rater_by_name(session=session, name=name)
                assignment = next_task(
                    session=session,
                    campaign=campaign_by_name(session=session, name="demo"),
                    rater=rater,
                    rng=random.Random(10 * seed + step),
                )
                first = session.get(Candidate, _shown_candidate_id(session, assignment, 0))
                shown_first[(name, assignment.task_id)] = (f"c{first.id}", first.completion[0]["content"])
                submit_judgment(
                    session=session, rater=rater, assignment_id=assignment.id, preference=2, seconds_spent=12.5
                )  # "A better": whatever was shown on the left
    output = tmp_path / "judgments"
    summary = main(ExportArguments(campaign="demo", format="judgments", db=sqlite_url, output_dir=str(output)))
    records = datasets.load_dataset(str(output), split="train").to_list()
    assert summary["rows"] == len(records) == 6
    for record in records:
        task_id = int(record["item"].split("-")[1])
        left_id, left_text = shown_first[(record["rater"], task_id)]
        assert (record["left"], record["choice"], record["strength"]) == (left_id, "left", 2)
        assert record["left_length"] == len(left_text) and record["seconds"] == 12.5
    gold = [record for record in records if record["gold"]]
    assert gold and all(record["gold"] == _policy_candidate(sessions, record, "sft") for record in gold)
    assert len(judgment_table(records)) == 6  # what `plumb collect quality` reads
    engine.dispose()


def _shown_candidate_id(session, assignment, position):
    task = session.get(Task, assignment.task_id)
    return task.candidate_ids[assignment.candidate_order[position]]


def _policy_candidate(sessions, record, policy_name):
    """The id (as `cN`) of the candidate of `policy_name` among the record's two."""
    with sessions() as session:
        ids = [int(record[side][1:]) for side in ("left", "right")]
        rows = session.execute(select(Candidate.id, Policy.name).join(Policy).where(Candidate.id.in_(ids))).all()
    return next(f"c{cid}" for cid, name in rows if name == policy_name)
