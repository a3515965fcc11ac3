"""Scheduling: what a rater sees next, overlap, leases, gold tasks, strategies, and 50 raters at once."""

import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from collect.services.scheduling import next_task, set_priorities, skip_task, submit_judgment, to_canonical, undo_last
from collect.store import (
    Assignment,
    Judgment,
    JudgmentError,
    Task,
    campaign_by_name,
    live_judgments_query,
    rater_by_name,
)
from collect.store.models import utcnow
from tests.support.campaigns import seed_campaign, seed_raters, work_of_choosing


def lease(sessions, rater_name, *, seed=0, now=None, campaign="demo"):
    """Lease the rater's next task in its own transaction; returns (assignment, task) or (None, None)."""
    with sessions.begin() as session:
        rater = rater_by_name(session=session, name=rater_name)
        assignment = next_task(
            session=session,
            campaign=campaign_by_name(session=session, name=campaign),
            rater=rater,
            rng=random.Random(seed),
            now=now,
        )
        return (assignment, session.get(Task, assignment.task_id)) if assignment else (None, None)


def answer(sessions, rater_name, assignment, preference=1, **fields):
    with sessions.begin() as session:
        rater = rater_by_name(session=session, name=rater_name)
        return submit_judgment(
            session=session, rater=rater, assignment_id=assignment.id, preference=preference, **fields
        )


def test_a_rater_never_gets_a_task_twice_and_keeps_an_unexpired_lease(store):
    _, sessions = store
    seed_campaign(sessions, prompts=3, raters_per_task=1, max_raters_per_task=1)
    seed_raters(sessions, 1)
    first, _ = lease(sessions, "rater0")
    assert lease(sessions, "rater0")[0].id == first.id  # a reload shows the same task
    answer(sessions, "rater0", first)
    second, _ = lease(sessions, "rater0")
    skip = second
    with sessions.begin() as session:
        skip_task(session=session, rater=rater_by_name(session=session, name="rater0"), assignment_id=skip.id)
    third, _ = lease(sessions, "rater0")
    assert len({first.task_id, second.task_id, third.task_id}) == 3
    answer(sessions, "rater0", third)
    assert lease(sessions, "rater0") == (None, None)


def test_overlap_limits_raters_per_task_and_expired_leases_return_to_the_pool(store):
    _, sessions = store
    seed_campaign(sessions, prompts=1, raters_per_task=2, max_raters_per_task=2, lease_minutes=10)
    seed_raters(sessions, 3)
    a, _ = lease(sessions, "rater0")
    b, _ = lease(sessions, "rater1")
    assert a.task_id == b.task_id
    assert lease(sessions, "rater2") == (None, None)  # both slots are leased
    later = utcnow() + timedelta(minutes=11)
    c, _ = lease(sessions, "rater2", now=later)  # rater1 walked away: the lease ran out
    assert c.task_id == a.task_id


def test_a_raters_own_expired_lease_is_renewed_in_place(store):
    _, sessions = store
    seed_campaign(sessions, prompts=1, raters_per_task=1, max_raters_per_task=1, lease_minutes=10)
    seed_raters(sessions, 1)
    first, _ = lease(sessions, "rater0")
    later = utcnow() + timedelta(minutes=11)  # they walked away and came back: the lease ran out, the task is free
    again, _ = lease(sessions, "rater0", now=later)
    assert again.id == first.id and again.expires_at == later + timedelta(minutes=10)
    with sessions() as session:
        assert session.scalar(select(func.count(Assignment.id))) == 1  # one row per (task, rater)


def test_candidate_order_is_randomized_per_assignment_and_answers_are_stored_canonically(store):
    _, sessions = store
    seed_campaign(sessions, prompts=1, raters_per_task=40, max_raters_per_task=40)
    raters = seed_raters(sessions, 40)
    orders = Counter()
    for seed, name in enumerate(raters):
        assignment, _ = lease(sessions, name, seed=seed)
        orders[tuple(assignment.candidate_order)] += 1
        judgment = answer(sessions, name, assignment, preference=3)  # "A much better": whatever was shown first
        assert judgment.preference == (3 if assignment.candidate_order == [0, 1] else -3)
    assert set(orders) == {(0, 1), (1, 0)}


def test_to_canonical_maps_ranks_and_ratings_through_the_display_order():
    shown = Assignment(candidate_order=[2, 0, 1])  # position 0 shows the task's third candidate
    assert to_canonical(shown, ranks=[1, 2, 3]) == {"preference": None, "ranks": [2, 3, 1], "ratings": None}
    assert to_canonical(shown, ratings=[5, 4, 1])["ratings"] == [4, 1, 5]


def test_gold_tasks_are_mixed_in_once_per_rater_without_overlap_limit(store):
    _, sessions = store
    seed_campaign(sessions, prompts=6, gold=2, gold_share=0.5, raters_per_task=1, max_raters_per_task=1)
    raters = seed_raters(sessions, 3)
    for name in raters:
        seen = []
        for seed in range(10):
            assignment, task = lease(sessions, name, seed=seed)
            if assignment is None:
                break
            seen.append(task.is_gold)
            answer(sessions, name, assignment)
        assert seen.count(True) == 2  # every rater gets both gold tasks, once each
    with sessions() as session:
        regular = session.scalars(select(Task).where(Task.is_gold.is_(False))).all()
        assert [task.judgment_count for task in regular] == [1, 1, 1, 1]


def test_overlap_grows_only_on_disagreement_up_to_the_maximum(store):
    _, sessions = store
    seed_campaign(sessions, prompts=2, raters_per_task=2, max_raters_per_task=3)
    raters = seed_raters(sessions, 4)
    for name, preferences in zip(raters[:2], ([1, 1], [1, -1])):  # agree on one task, disagree on the other
        for preference in preferences:
            assignment, _ = lease(sessions, name)
            task_preference = preference if assignment.candidate_order == [0, 1] else -preference
            answer(sessions, name, assignment, preference=task_preference)
    with sessions() as session:
        targets = sorted(task.target_overlap for task in session.scalars(select(Task)))
    assert targets == [2, 3]
    third, _ = lease(sessions, raters[2])
    answer(sessions, raters[2], third, both_bad=True, preference=None)  # still disagreeing, but 3 is the maximum
    assert lease(sessions, raters[3]) == (None, None)


def test_overlap_grows_when_a_change_of_mind_turns_agreement_into_disagreement(store):
    _, sessions = store
    seed_campaign(sessions, prompts=1, raters_per_task=2, max_raters_per_task=3)
    raters = seed_raters(sessions, 2)
    leases = [lease(sessions, name)[0] for name in raters]

    def shown(assignment, preference):  # the display-order answer that means `preference` on the task
        return preference if assignment.candidate_order == [0, 1] else -preference

    for name, assignment in zip(raters, leases):
        answer(sessions, name, assignment, preference=shown(assignment, 1))  # both prefer the first candidate
    with sessions() as session:
        assert session.scalar(select(Task.target_overlap)) == 2
    answer(sessions, raters[1], leases[1], preference=shown(leases[1], -1))  # within the undo window
    with sessions() as session:
        task = session.scalars(select(Task)).one()
        assert (task.judgment_count, task.target_overlap) == (2, 3)


def test_the_strategies_fewest_judgments_first_priority_and_random(store):
    _, sessions = store
    seed_campaign(sessions, name="fewest", prompts=3, raters_per_task=3, max_raters_per_task=3)
    seed_campaign(sessions, name="ranked", prompts=3, strategy="priority")
    raters = seed_raters(sessions, 3)
    first, _ = lease(sessions, raters[0], campaign="fewest")
    second, _ = lease(sessions, raters[1], campaign="fewest")
    assert second.task_id != first.task_id  # the least-covered task comes first
    with sessions.begin() as session:
        ranked = campaign_by_name(session=session, name="ranked")
        task_ids = session.scalars(select(Task.id).where(Task.campaign_id == ranked.id).order_by(Task.id)).all()
        set_priorities(session=session, priorities={task_ids[0]: 0.1, task_ids[1]: 0.9, task_ids[2]: 0.5})
    assert lease(sessions, raters[2], campaign="ranked")[0].task_id == task_ids[1]
    seed_campaign(sessions, name="shuffled", prompts=3, strategy="random", raters_per_task=1, max_raters_per_task=1)
    served = set()
    for seed in range(3):
        assignment, _ = lease(sessions, raters[0], campaign="shuffled", seed=seed)
        answer(sessions, raters[0], assignment)
        served.add(assignment.task_id)
    assert len(served) == 3 and lease(sessions, raters[0], campaign="shuffled") == (None, None)


@pytest.mark.parametrize("strategy", ["fewest-judgments-first", "priority"])
def test_a_task_another_rater_holds_comes_first_when_it_is_the_least_covered(store, strategy):
    _, sessions = store
    seed_campaign(sessions, prompts=2, raters_per_task=3, max_raters_per_task=3, strategy=strategy)
    raters = seed_raters(sessions, 3)
    held, _ = lease(sessions, raters[0])  # the first task, leased and not answered yet
    judged, _ = lease(sessions, raters[1])  # the second: the first has a slot in use
    answer(sessions, raters[1], judged)
    # One slot in use on each (an open lease, a judgment): the tie goes to the lower id, the held task.
    assert held.task_id < judged.task_id
    assert lease(sessions, raters[2])[0].task_id == held.task_id


def test_choosing_a_task_reads_about_as_much_in_a_large_campaign_as_in_a_small_one(db_url):
    from collect.store import make_engine, session_factory, upgrade

    work = {}
    for size, schema in ((30, "small"), (600, "large")):
        engine = make_engine(db_url)
        if engine.dialect.name == "sqlite":
            engine.dispose()
            engine = make_engine(db_url.replace("collect.sqlite", f"{schema}.sqlite"))
        else:  # one database, one schema per campaign size
            engine = make_engine(db_url, connect_args={"options": f"-c search_path={schema}"})
            with engine.begin() as connection:
                connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        upgrade(engine)
        sessions = session_factory(engine)
        seed_campaign(sessions, prompts=size, raters_per_task=3, max_raters_per_task=3)
        raters = seed_raters(sessions, 4)
        for name in raters[:3]:  # some leases open and some judgments in, as in a campaign under way
            assignment, _ = lease(sessions, name)
            if name != raters[2]:
                answer(sessions, name, assignment)
        work[size] = work_of_choosing(sessions, raters[3])
        engine.dispose()
    # Reading every task would cost 20 times as much in the large campaign.
    assert work[600] < 1.5 * work[30], work


def test_undo_retracts_the_last_judgment_and_hands_the_task_back(store):
    _, sessions = store
    seed_campaign(sessions, prompts=2, raters_per_task=1, max_raters_per_task=1)
    seed_raters(sessions, 1)
    assignment, _ = lease(sessions, "rater0")
    answer(sessions, "rater0", assignment, preference=2)
    with sessions.begin() as session:
        rater = rater_by_name(session=session, name="rater0")
        campaign = campaign_by_name(session=session, name="demo")
        back = undo_last(session=session, campaign=campaign, rater=rater)
        assert back.id == assignment.id and back.state == "leased"
        with pytest.raises(JudgmentError, match="nothing to undo"):
            undo_last(session=session, campaign=campaign, rater=rater)
    assert lease(sessions, "rater0")[0].id == assignment.id
    answer(sessions, "rater0", assignment, preference=-2)
    with sessions() as session:
        assert session.get(Task, assignment.task_id).judgment_count == 1


def test_undo_works_only_within_the_campaigns_undo_window(sqlite_url):
    from collect.store import make_engine, session_factory, upgrade

    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_campaign(sessions, prompts=1, raters_per_task=1, max_raters_per_task=1, undo_minutes=2)
    seed_raters(sessions, 1)
    assignment, _ = lease(sessions, "rater0")
    answer(sessions, "rater0", assignment, preference=1)
    with sessions.begin() as session:
        judged_at = session.scalars(select(Judgment.created_at)).one()
        rater = rater_by_name(session=session, name="rater0")
        campaign = campaign_by_name(session=session, name="demo")
        with pytest.raises(JudgmentError, match="more than 2 minutes old: ask a reviewer"):
            undo_last(session=session, campaign=campaign, rater=rater, now=judged_at + timedelta(minutes=2.5))
        assert (
            undo_last(session=session, campaign=campaign, rater=rater, now=judged_at + timedelta(minutes=1.5)).id
            == assignment.id
        )
    engine.dispose()


def test_past_the_undo_window_a_resubmitted_answer_is_refused_and_within_it_replaces_the_first(store):
    _, sessions = store
    seed_campaign(sessions, prompts=2, raters_per_task=1, max_raters_per_task=1, undo_minutes=2)
    seed_raters(sessions, 1)
    old, _ = lease(sessions, "rater0")
    answer(sessions, "rater0", old, preference=-2)
    with sessions.begin() as session:  # the judgment is a day old: exported or adjudicated by now, perhaps
        judgment = session.scalars(select(Judgment)).one()
        judgment.created_at -= timedelta(days=1)
    with pytest.raises(JudgmentError, match="more than 2 minutes old: ask a reviewer"):
        answer(sessions, "rater0", old, preference=3)
    fresh, _ = lease(sessions, "rater0")
    answer(sessions, "rater0", fresh, preference=-2)
    answer(sessions, "rater0", fresh, preference=3)  # a change of mind within the window replaces the answer
    with sessions() as session:
        live = {
            j.assignment_id: j
            for j in session.scalars(live_judgments_query(session.get(Task, old.task_id).campaign_id))
        }
        assert live[old.id].preference == to_canonical(old, preference=-2)["preference"]
        assert live[fresh.id].preference == to_canonical(fresh, preference=3)["preference"]
        assert session.scalar(select(func.count(Judgment.id))) == 3  # two on the fresh task, the old one untouched


def test_an_edit_of_the_better_response_is_stored_only_where_the_campaign_asks_for_it(store):
    _, sessions = store
    seed_campaign(sessions, name="edits", prompts=1, allow_edits=True)
    seed_campaign(sessions, name="plain", prompts=1)
    seed_raters(sessions, 1)
    for name, expected in (("edits", "A clearer answer."), ("plain", None)):
        assignment, _ = lease(sessions, "rater0", campaign=name)
        with sessions.begin() as session:
            rater = rater_by_name(session=session, name="rater0")
            if expected is None:
                with pytest.raises(JudgmentError, match="does not ask raters to improve a response"):
                    submit_judgment(
                        session=session,
                        rater=rater,
                        assignment_id=assignment.id,
                        preference=1,
                        edit="A clearer answer.",
                    )
                judgment = submit_judgment(
                    session=session, rater=rater, assignment_id=assignment.id, preference=1, edit="   "
                )  # a blank box is no edit
            else:
                judgment = submit_judgment(
                    session=session,
                    rater=rater,
                    assignment_id=assignment.id,
                    preference=1,
                    edit="  A clearer answer.\n",
                )
            assert judgment.edit == expected
    seed_campaign(sessions, name="ranked", kind="ranking", prompts=1, allow_edits=True)
    assignment, _ = lease(sessions, "rater0", campaign="ranked")
    with (
        sessions.begin() as session,
        pytest.raises(JudgmentError, match="goes with a pairwise judgment, not a ranking"),
    ):
        submit_judgment(
            session=session,
            rater=rater_by_name(session=session, name="rater0"),
            assignment_id=assignment.id,
            ranks=[1, 2],
            edit="Better.",
        )


def test_submissions_check_the_campaign_options(store):
    _, sessions = store
    seed_campaign(sessions, prompts=1, rationale="required", allow_both_bad=False)
    seed_raters(sessions, 2)
    assignment, _ = lease(sessions, "rater0")
    for fields, message in (
        ({}, "asks for a rationale"),
        ({"both_bad": True, "rationale": "x"}, "does not offer"),
        ({"rationale": "x", "flags": ["rude"]}, "unknown flag"),
    ):
        with pytest.raises(JudgmentError, match=message):
            answer(sessions, "rater0", assignment, **fields)
    with pytest.raises(JudgmentError, match="not one of yours"):
        answer(sessions, "rater1", assignment, rationale="x")


def test_fifty_concurrent_raters_never_overfill_a_task_or_get_one_twice(store):
    _, sessions = store
    overlap, tasks = 3, 40
    seed_campaign(sessions, prompts=tasks, raters_per_task=overlap, max_raters_per_task=overlap)
    raters = seed_raters(sessions, 50)
    leased, errors, start = [], [], threading.Barrier(len(raters))

    def work(name):
        try:
            start.wait()
            for seed in range(tasks):
                assignment, _ = lease(sessions, name, seed=seed)
                if assignment is None:
                    return
                leased.append((assignment.task_id, name))
                answer(sessions, name, assignment, preference=1 if assignment.candidate_order == [0, 1] else -1)
        except Exception as error:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=work, args=(name,)) for name in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(leased) == len(set(leased)) == overlap * tasks  # no double assignment, every slot filled
    with sessions() as session:
        per_task = dict(session.execute(select(Judgment.task_id, func.count()).group_by(Judgment.task_id)).all())
        assert sorted(set(per_task.values())) == [overlap]  # no overlap violation
        assert session.scalar(select(func.count()).select_from(Task).where(Task.judgment_count != overlap)) == 0
