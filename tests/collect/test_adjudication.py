"""The disagreement queue and adjudication, on a SQLite file and on PostgreSQL: what enters the queue, in which
order, what the reviewer sees, what is stored, and that the export takes the reviewer's word over the majority."""

import datasets
import pytest
from sqlalchemy import select

from collect.export import main as export
from collect.services.adjudication import AdjudicationError, disagreement_queue, next_review, submit_adjudication
from collect.services.export.rows import ExportArguments
from collect.store import Adjudication, audit_events, campaign_by_name
from tests.support.campaigns import campaign_with_reviewer, judge


def test_the_queue_holds_disputed_pool_tasks_longest_waiting_first(store):
    _, sessions = store
    gold, t1, t2, t3, t4 = campaign_with_reviewer(sessions)
    judge(sessions, "rater0", t3, both_bad=True, rationale="both <b>wrong</b>", flags=["broken"], seconds_spent=12.0)
    judge(sessions, "rater1", t3, preference=0)  # t3: disputed, first
    judge(sessions, "rater0", t1, preference=2)
    judge(sessions, "rater1", t1, preference=-1, edit="A better **answer**")  # t1: disputed, second
    judge(sessions, "rater0", t2, preference=1)
    judge(sessions, "rater1", t2, preference=3)  # t2: same side, no dispute
    judge(sessions, "rater0", t4, preference=1)  # t4: one judgment only
    judge(sessions, "rater0", gold, preference=1)
    judge(sessions, "rater1", gold, preference=-1)  # gold tasks have a known answer
    with sessions.begin() as session:
        assert disagreement_queue(session, campaign_by_name(session=session, name="demo")) == [t3, t1]

    page = next_review(sessions, campaign="demo", reviewer_name="rev")
    assert page.waiting == 2 and page.item.task_id == t3
    assert [(c["letter"], c["policy"]) for c in page.item.candidates] == [("A", "sft"), ("B", "dpo")]
    assert [(a["rater"], a["answer"]) for a in page.item.answers] == [("rater0", "Both bad"), ("rater1", "Tie")]
    assert page.item.answers[0]["rationale"] == "both <b>wrong</b>" and page.item.answers[0]["flags"] == ["broken"]
    assert page.item.answers[0]["seconds"] == 12.0
    # Answers are in the task's order (A = policy sft), not the order each rater saw (B first here).
    put_off = next_review(sessions, campaign="demo", reviewer_name="rev", passed=[t3])
    assert [a["answer"] for a in put_off.item.answers] == ["A better", "B slightly better"]
    assert put_off.item.answers[1]["edit"] == "A better **answer**"

    after = submit_adjudication(
        sessions, campaign="demo", reviewer_name="rev", task_id=t3, choice="B better", note=" B is at least right "
    )
    assert after.item.task_id == t1 and after.waiting == 1 and "Saved" in after.message
    with sessions.begin() as session:
        (stored,) = session.scalars(select(Adjudication)).all()
        assert (stored.task_id, stored.preference, stored.both_bad, stored.note) == (
            t3,
            -2,
            False,
            "B is at least right",
        )
        assert [e.detail["task_id"] for e in audit_events(session=session, action="task.adjudicated")] == [t3]
    judge(sessions, "rater2", t3, preference=3)  # news after the decision: the task comes back, last in line
    assert next_review(sessions, campaign="demo", reviewer_name="rev", passed=[t1]).item.task_id == t3


def test_bad_adjudications_and_raters_are_refused_with_the_reason(store):
    _, sessions = store
    gold, t1, *_ = campaign_with_reviewer(sessions, allow_both_bad=False)
    for rater, preference in (("rater0", 1), ("rater1", -1)):
        judge(sessions, rater, t1, preference=preference)

    with pytest.raises(PermissionError, match="reviewers and admins"):
        next_review(sessions, campaign="demo", reviewer_name="ana")
    with pytest.raises(PermissionError, match="reviewers and admins"):
        submit_adjudication(sessions, campaign="demo", reviewer_name="ana", task_id=t1, choice="A better")
    cases = [
        ({"task_id": t1, "choice": "C better"}, "unknown choice 'C better'"),
        ({"task_id": t1, "choice": None}, "choose an answer"),
        ({"task_id": t1, "choice": "Both bad"}, "does not offer 'both bad'"),
        ({"task_id": gold, "choice": "A better"}, f"task {gold} is a gold task"),
        ({"task_id": 9999, "choice": "A better"}, "task 9999 is not a task of campaign 'demo'"),
        ({"task_id": None, "choice": "A better"}, "load the queue first"),
    ]
    for arguments, message in cases:
        with pytest.raises(AdjudicationError, match=message):
            submit_adjudication(sessions, campaign="demo", reviewer_name="rev", **arguments)
    with sessions.begin() as session:
        assert session.scalars(select(Adjudication)).all() == []


def test_the_export_takes_the_adjudication_over_the_majority(store, db_url, tmp_path):
    _, sessions = store
    _, t1, t2, *_ = campaign_with_reviewer(sessions)
    for rater, preference in (("rater0", 1), ("rater1", 2), ("rater2", -1)):
        judge(sessions, rater, t1, preference=preference)  # majority: A (policy sft)
    for rater, preference in (("rater0", 1), ("rater1", 1)):
        judge(sessions, rater, t2, preference=preference)
    submit_adjudication(sessions, campaign="demo", reviewer_name="rev", task_id=t1, choice="A better")
    submit_adjudication(sessions, campaign="demo", reviewer_name="rev", task_id=t1, choice="B much better")

    args = ExportArguments(campaign="demo", db=db_url, output_dir=str(tmp_path / "pairs"), test_size=0)
    summary = export(args)
    rows = datasets.load_dataset(args.output_dir, split="train")
    decided = [(r["meta"]["task_id"], r["chosen"][0]["content"], r["margin"], r["meta"]["adjudicated"]) for r in rows]
    assert decided == [(t1, "answer 1 from dpo", 3.0, True), (t2, "answer 2 from sft", 1.0, False)]  # newest counts
    assert summary["adjudicated_tasks"] == 1
    per_rater = ExportArguments(
        campaign="demo", db=db_url, output_dir=str(tmp_path / "own"), per_rater=True, test_size=0
    )
    export(per_rater)
    own = datasets.load_dataset(per_rater.output_dir, split="train")
    assert not any(own["meta"][i]["adjudicated"] for i in range(len(own)))  # each rater's own row stays theirs


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_ranking_is_adjudicated_with_ranks_and_exported(store, db_url, tmp_path):
    _, sessions = store
    _, t1, *_ = campaign_with_reviewer(sessions, kind="ranking", policies=("a", "b", "c"))
    judge(sessions, "rater0", t1, ranks=[1, 2, 3])
    judge(sessions, "rater1", t1, ranks=[3, 2, 1])
    page = next_review(sessions, campaign="demo", reviewer_name="rev")
    assert [a["answer"] for a in page.item.answers] == ["A: 1 · B: 2 · C: 3", "A: 3 · B: 2 · C: 1"]
    assert page.item.score_choices == [1, 2, 3]
    with pytest.raises(AdjudicationError, match="give every candidate a rank"):
        submit_adjudication(sessions, campaign="demo", reviewer_name="rev", task_id=t1, scores=[1, None, 2])
    with pytest.raises(AdjudicationError, match="rank the best candidate 1"):
        submit_adjudication(sessions, campaign="demo", reviewer_name="rev", task_id=t1, scores=[2, 3, 3])
    submit_adjudication(sessions, campaign="demo", reviewer_name="rev", task_id=t1, scores=[2, 1, 1])
    args = ExportArguments(
        campaign="demo", db=db_url, format="ranking", output_dir=str(tmp_path / "ranks"), test_size=0
    )
    export(args)
    (row,) = datasets.load_dataset(args.output_dir, split="train")
    assert row["ranks"] == [2, 1, 1] and row["meta"]["adjudicated"]
