"""Arena battles on the server: who answers, when a vote counts, identity leaks, and what a vote stores.

Times are injected (`now=`, monotonic seconds), so no test depends on the clock. The store
tests run on SQLite and on a real PostgreSQL server (`db_url`).
"""

import random

import pytest
from sqlalchemy import func, select

from collect.domain.answers import IDENTITY_LEAK
from collect.domain.campaign import PolicySpec, campaign_from_dict
from collect.services.arena.battles import ArenaBattles, ArenaError, cast_vote, check_rater, start_battle
from collect.services.arena.identity import default_aliases, names_own_model
from collect.services.arena.ratings import count_battles, leaderboard
from collect.services.arena.streams import follow, run_battle
from collect.services.export.items import load_items
from collect.services.export.records import battle_records
from collect.services.scheduling import next_task
from collect.store import (
    Assignment,
    Candidate,
    Judgment,
    Prompt,
    StoreError,
    Task,
    campaign_by_name,
    rater_by_name,
)
from collect.store.raters import set_active
from plumb.generation import LoadedModels
from tests.support.arena import answered, arena_campaign


def test_a_vote_stores_the_battle_in_one_transaction_and_counts_only_after_the_reading_time(store):
    _, sessions = store
    spec = arena_campaign(sessions)
    battle = answered(spec)
    assert not battle.can_vote(now=106.9)  # the later start (102) + 5 s
    with pytest.raises(ArenaError, match="voting opens in 1 s"):
        cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="A is better", now=106.1)
    with sessions.begin() as session:
        assert session.scalar(select(func.count(Prompt.id))) == 0  # a refused vote stores nothing

    battle.add_text(1, " More.", now=106.5)  # streamed after the page's last update: not what the rater read
    judgment = cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="B is better", now=107.0)
    assert not battle.stopped.is_set()  # the vote leaves B's answer streaming on

    with sessions.begin() as session:
        prompt = session.scalar(select(Prompt))
        task = session.scalar(select(Task))
        candidates = [session.get(Candidate, cid) for cid in task.candidate_ids]
        assignment = session.get(Assignment, judgment.assignment_id)
        stored = session.get(Judgment, judgment.id)
        assert prompt.external_id == f"arena-{battle.id}"
        assert prompt.messages == [{"role": "user", "content": "Tell me about rain."}]
        assert [c.completion for c in candidates] == [
            [{"role": "assistant", "content": "First answer."}],
            [{"role": "assistant", "content": "Second answer. More."}],  # all there is so far; whole once it ends
        ]
        assert [c.settings["finished"] for c in candidates] == [True, False]  # at the vote, as shown
        assert [c.settings["shown_chars"] for c in candidates] == [13, 14]
        assert [c.settings["complete"] for c in candidates] == [True, False]
        assert {(c.settings["battle"], c.settings["turn"]) for c in candidates} == {(f"arena-{battle.id}", 1)}
        assert candidates[0].settings["max_new_tokens"] == spec.arena_max_new_tokens
        assert (task.source, task.kind, task.target_overlap, task.judgment_count) == ("arena", "pairwise", 1, 1)
        assert (assignment.state, assignment.candidate_order) == ("judged", [0, 1])
        assert assignment.rater_id == rater_by_name(session=session, name="ana").id
        # "B is better" in canonical order: the task's second candidate is B's answer.
        assert (stored.preference, stored.both_bad, stored.flags) == (-2, False, [])
        assert stored.seconds_spent == pytest.approx(7.0)  # from the start (t=100) to the vote (t=107)


def test_a_battle_takes_one_vote_however_it_is_sent(store):
    _, sessions = store
    spec = arena_campaign(sessions)
    battle = answered(spec)
    cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="Tie", now=200.0)
    with pytest.raises(ArenaError, match="already voted"):
        cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="A is better", now=201.0)
    # A copy of the battle that never heard of the vote (another replica, say): the store refuses it.
    twin = answered(spec)
    twin.id = battle.id
    with pytest.raises(ArenaError, match="already voted"):
        cast_vote(sessions, campaign="arena", battle=twin, rater_name="ana", vote="A is better", now=201.0)
    with sessions.begin() as session:
        assert session.scalar(select(func.count(Judgment.id))) == 1
        assert session.scalar(select(Judgment.preference)) == 0


def test_votes_are_refused_until_both_answered_when_one_failed_and_from_another_rater(store):
    _, sessions = store
    spec = arena_campaign(sessions, arena_min_seconds=0)
    battle = start_battle(spec, rater="ana", prompt="hi", rng=random.Random(1), now=0.0)
    battle.add_text(0, "Hello!", now=1.0)
    with pytest.raises(ArenaError, match="both answers have started"):
        cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="A is better", now=50.0)
    battle.finish(1, now=2.0)  # an empty answer is an answer: it can be judged
    assert battle.can_vote(now=2.0)
    with pytest.raises(ArenaError, match="another rater"):
        cast_vote(sessions, campaign="arena", battle=battle, rater_name="ben", vote="A is better", now=3.0)
    with pytest.raises(ArenaError, match="unknown vote"):
        cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="A much better", now=3.0)
    battle.fail(1, "ModelLoadError: model directory not found")
    assert battle.stopped.is_set()  # the other side's answer could never be judged: it stops too
    with pytest.raises(ArenaError, match="Model B could not answer"):
        cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="A is better", now=3.0)
    with sessions.begin() as session:
        assert session.scalar(select(func.count(Task.id))) == 0

    battles, battle = ArenaBattles(), start_battle(spec, rater="ana", prompt="hi", rng=random.Random(1), now=0.0)
    battles.add(battle)
    assert battles.get(battle.id, rater="ana") is battle
    with pytest.raises(ArenaError, match="No battle"):
        battles.get(battle.id, rater="ben")  # the page holds only an id: it must be the asker's battle
    battles.discard(battle.id, rater="ben")
    assert not battle.stopped.is_set()  # not ben's to stop
    battles.discard(battle.id, rater="ana")
    assert battle.stopped.is_set()


def test_two_different_policies_are_drawn_in_a_random_order(sqlite_url):
    spec = campaign_from_dict({"name": "arena", "policies": ["a", "b", "c"]})
    pairs = {
        tuple(side.policy.name for side in start_battle(spec, rater="ana", prompt="hi", rng=random.Random(seed)).sides)
        for seed in range(60)
    }
    assert all(a != b for a, b in pairs)
    assert pairs == {(a, b) for a in "abc" for b in "abc" if a != b}  # every pair, both ways round
    with pytest.raises(ArenaError, match="Type a prompt"):
        start_battle(spec, rater="ana", prompt="   ")
    with pytest.raises(ArenaError, match="at least two policies"):
        start_battle(campaign_from_dict({"name": "x", "policies": ["a"]}), rater="ana", prompt="hi")
    with pytest.raises(ArenaError, match="no arena"):
        start_battle(
            campaign_from_dict({"name": "x", "policies": ["a", "b"], "arena": False}), rater="ana", prompt="hi"
        )
    for kind in ("ranking", "rating"):  # their exports would get pairwise arena tasks mixed in
        with pytest.raises(ArenaError, match=f"pairwise campaigns only; this one is a {kind}"):
            start_battle(
                campaign_from_dict({"name": "x", "kind": kind, "policies": ["a", "b"]}), rater="ana", prompt="hi"
            )


def test_a_deactivated_rater_cannot_start_a_battle_or_vote(store):
    _, sessions = store
    spec = arena_campaign(sessions, arena_min_seconds=0)
    started = answered(spec, rater="ben")  # before the deactivation
    with sessions.begin() as session:
        set_active(session=session, name="ben", active=False)
    with pytest.raises(StoreError, match="rater 'ben' is deactivated"):
        cast_vote(sessions, campaign="arena", battle=started, rater_name="ben", vote="Tie", now=110.0)
    check_rater(sessions, "ana")
    with pytest.raises(ArenaError, match="rater 'ben' is deactivated"):
        check_rater(sessions, "ben")  # a page opened before the deactivation still sends ben's login
    with pytest.raises(ArenaError, match="no rater named 'eve'"):
        check_rater(sessions, "eve")


def test_a_vote_judges_what_the_page_showed_and_the_page_goes_on_showing_the_answers(store):
    _, sessions = store
    spec = arena_campaign(sessions, arena_min_seconds=0)
    battle = answered(spec)
    battle.finish(1, now=103.0)
    with battle.voting:  # a vote is being recorded: what it judges is `shown`, which holds still meanwhile
        battle.add_text(1, " More.", now=103.0)
        assert battle.show() == ("First answer.", "Second answer.")
    cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="Tie", now=110.0)
    assert battle.turn.finished_at_vote == (True, False)  # B's end had not reached the page
    assert battle.show() == ("First answer.", "Second answer. More.")  # after the vote the page shows the rest


@pytest.mark.parametrize(
    ("policy", "text", "leaks"),
    [
        (PolicySpec("sft", "default"), "I am SmolLM, a small assistant.", True),
        (PolicySpec("sft", "default"), "As smollm2 I cannot browse.", True),  # case-insensitive
        (PolicySpec("sft", "default"), "SmolLMs are small models.", False),  # whole words only
        (PolicySpec("sft", "default"), "I am an AI assistant.", False),
        (PolicySpec("sft", "default"), "This answer went through SFT.", True),  # the policy's own name
        (PolicySpec("dpo", "default", aliases=["Plumby"]), "I'm Plumby!", True),
        (
            PolicySpec("dpo", "default", aliases=["Plumby"]),
            "I am SmolLM.",
            False,
        ),  # listed aliases replace the defaults
        (PolicySpec("q", "Qwen/Qwen2.5-0.5B-Instruct"), "I am Qwen, created by Alibaba Cloud.", True),
        (PolicySpec("q", "Qwen/Qwen2.5-0.5B-Instruct"), "Qwen2.5 here.", True),
        (PolicySpec("l", "meta-llama/Llama-3.1-8B-Instruct"), "I'm LLaMA.", True),
        (PolicySpec("l", "meta-llama/Llama-3.1-8B-Instruct"), "Llamas graze in the Andes.", False),
        (PolicySpec("smollm2-t0.7", "default"), "My name is smollm2-t0.7.", True),
        (
            PolicySpec("served", "http://127.0.0.1:8000/v1", {"model": "mistralai/Mistral-7B-Instruct-v0.3"}),
            "I am Mistral.",
            True,
        ),
    ],
)
def test_an_answer_naming_its_own_model_is_an_identity_leak(policy, text, leaks):
    assert names_own_model(text, policy) is leaks


def test_default_aliases_come_from_the_model_spec(tmp_path):
    assert default_aliases(PolicySpec("p", "default")) == ["SmolLM", "SmolLM2"]
    assert default_aliases(PolicySpec("p", "/models/mistral-7b-instruct-v0.2.Q4_K_M.gguf")) == ["mistral"]
    assert default_aliases(PolicySpec("p", str(tmp_path))) == []  # a directory's name says nothing reliable
    assert default_aliases(PolicySpec("p", "01-ai/Yi-6B")) == []  # too short to mean a leak
    assert default_aliases(PolicySpec("p", "http://127.0.0.1:8000/v1")) == []  # no model named in the request


def test_leaked_votes_are_kept_but_left_out_of_the_leaderboard_and_arena_tasks_are_never_leased(store):
    _, sessions = store
    spec = arena_campaign(sessions, arena_min_seconds=0)
    for seed in range(4):  # sft wins four clean battles
        battle = answered(spec, seed=seed)
        sft_side = [side.policy.name for side in battle.sides].index("sft")
        vote = "A is better" if sft_side == 0 else "B is better"
        cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote=vote, now=110.0)
    leak = answered(spec, ("I am Plumby, the best.", "Hello."), seed=0)  # seed 0: dpo answers as A
    assert [side.policy.name for side in leak.sides][0] == "dpo" and leak.leaks() == ["A"]
    judgment = cast_vote(sessions, campaign="arena", battle=leak, rater_name="ana", vote="A is better", now=110.0)
    assert judgment.flags == [IDENTITY_LEAK]

    with sessions.begin() as session:
        campaign = campaign_by_name(session=session, name="arena")
        items = load_items(session, campaign.id)
        for name in ("ana", "ben"):
            assert (
                next_task(
                    session=session,
                    campaign=campaign,
                    rater=rater_by_name(session=session, name=name),
                    rng=random.Random(0),
                )
                is None
            )
    assert len(items) == 5 and all(item.task.source == "arena" for item in items)
    battles = battle_records(items)
    assert len(battles) == 4 and len(battle_records(items, include_identity_leaks=True)) == 5
    counts = count_battles(*([b[key] for b in battles] for key in ("model_a", "model_b", "winner")), source="arena")
    assert counts.battles == 4
    board = leaderboard(counts, l2=0.01, rounds=20, seed=0)
    assert board.policies == ["sft", "dpo"]


def tiny_policies(tiny_policy_dir) -> list[dict]:
    """Two greedy policies of the tiny random Llama: its greedy answers run to max_new_tokens (no EOS)."""
    return [{"name": name, "model": tiny_policy_dir, "generation": {"do_sample": False}} for name in ("x", "y")]


def test_a_page_that_goes_away_stops_both_answers(tiny_policy_dir):
    spec = campaign_from_dict(
        {"name": "arena", "arena_max_new_tokens": 400, "policies": tiny_policies(tiny_policy_dir)}
    )
    battle = start_battle(spec, rater="ana", prompt="hi")
    threads = run_battle(battle, LoadedModels().stream)
    progresses = follow(battle, poll_seconds=0.01)
    next(progresses)  # the page got its first update,
    progresses.close()  # then went away (Gradio closes the event's generator)
    for thread in threads:
        thread.join()
    assert battle.stopped.is_set() and battle.followed.is_set()
    assert not any(side.finished for side in battle.sides)  # neither ran on to 400 tokens for nobody


def test_a_battle_that_ended_by_itself_can_still_be_voted_on(store, tiny_policy_dir):
    _, sessions = store
    spec = arena_campaign(
        sessions, arena_min_seconds=0, arena_max_new_tokens=5, policies=tiny_policies(tiny_policy_dir)
    )
    battle = start_battle(spec, rater="ana", prompt="hi", rng=random.Random(0))
    threads = run_battle(battle, LoadedModels().stream)
    list(follow(battle, poll_seconds=0.01))
    for thread in threads:
        thread.join()
    assert all(side.finished for side in battle.sides)
    assert battle.stopped.is_set()  # the page's event ended, so it stopped the (ended) battle too
    cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="Tie")
    with sessions.begin() as session:
        candidates = [session.get(Candidate, cid) for cid in session.scalar(select(Task)).candidate_ids]
    assert [c.completion[0]["content"] for c in candidates] == [side.text for side in battle.sides]
    assert all(c.settings["finished"] for c in candidates)


def test_a_battle_streams_two_real_policies_and_reports_one_that_cannot_load(tiny_policy_dir, tmp_path):
    spec = campaign_from_dict(
        {
            "name": "arena",
            "arena_min_seconds": 0,
            "arena_max_new_tokens": 400,
            "policies": [
                {"name": "tiny", "model": tiny_policy_dir, "generation": {"do_sample": False}},
                {"name": "missing", "model": str(tmp_path / "no-such-model")},
            ],
        }
    )
    battle = start_battle(spec, rater="ana", prompt="hi", rng=random.Random(0))
    threads = run_battle(battle, LoadedModels().stream)
    progress = list(follow(battle, poll_seconds=0.01))
    for thread in threads:
        thread.join()
    tiny, missing = sorted(battle.sides, key=lambda side: side.policy.name != "tiny")
    # The failure stopped the battle: the tiny model did not run on to 400 tokens for an answer nobody can judge.
    assert battle.stopped.is_set() and not tiny.finished and tiny.error is None
    assert missing.error.startswith("ModelLoadError") and "no-such-model" in missing.error
    assert not progress[-1].can_vote and any(progress[-1].errors)  # the page is told; no traceback reaches it
    assert "could not answer" in battle.refusal()
