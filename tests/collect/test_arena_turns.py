"""Early votes and follow-up turns: a vote never cuts the answers off, and a battle goes on turn by turn.

The answers come from the tiny random Llama (`tiny_policy_dir`). A gate holds one stream
after its first piece, so a vote is cast while that answer is still being written, whatever
the machine's speed: no test depends on the clock.
"""

import random
import threading

import pytest
from sqlalchemy import select

from collect.domain.answers import IDENTITY_LEAK
from collect.services.arena.battles import ArenaError, cast_vote, send_follow_up, start_battle
from collect.services.arena.streams import follow, run_battle
from collect.services.export.items import load_items
from collect.services.export.records import battle_records
from collect.services.export.rows import ExportArguments, export_rows
from collect.store import Candidate, Judgment, Prompt, Task, campaign_by_name
from plumb.generation import LoadedModels
from tests.support.arena import answered, arena_campaign

WAIT_S = 120  # a bound for a broken stream, not a timing check


def tiny_policies(tiny_policy_dir) -> list[dict]:
    """Two greedy policies of the tiny random Llama: its answers run to max_new_tokens."""
    return [{"name": name, "model": tiny_policy_dir, "generation": {"do_sample": False}} for name in ("x", "y")]


class GatedStream:
    """The real stream, recording what each call was sent; with `gate`, each waits after its first text."""

    def __init__(self, gate: threading.Event | None = None):
        self.models, self.gate, self.sent = LoadedModels(), gate, []

    def __call__(self, model: str, messages: list[dict], generation: dict):
        self.sent.append(messages)
        started = False
        for piece in self.models.stream(model, messages, generation):
            if started and self.gate is not None:
                assert self.gate.wait(WAIT_S)
            started = started or bool(piece)
            yield piece


def stored_turns(sessions) -> list[tuple[Prompt, list[Candidate], Judgment]]:
    """(prompt, candidates in canonical order, judgment) of every stored arena task, oldest first."""
    with sessions.begin() as session:
        turns = []
        for task in session.scalars(select(Task).order_by(Task.id)):
            candidates = [session.get(Candidate, cid) for cid in task.candidate_ids]
            judgment = session.scalar(select(Judgment).where(Judgment.task_id == task.id))
            turns.append((session.get(Prompt, task.prompt_id), candidates, judgment))
        session.expunge_all()
        return turns


def test_an_early_vote_leaves_both_answers_streaming_to_their_end_and_stores_them_whole(store, tiny_policy_dir):
    _, sessions = store
    spec = arena_campaign(
        sessions, arena_min_seconds=0, arena_max_new_tokens=12, policies=tiny_policies(tiny_policy_dir)
    )
    gate = threading.Event()
    battle = start_battle(spec, rater="ana", prompt="Tell me about rain.", rng=random.Random(0))
    threads = run_battle(battle, GatedStream(gate))
    progresses = follow(battle, poll_seconds=0.01)
    progress = next(p for p in progresses if p.can_vote)  # both started; both held at the gate
    cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="A is better")
    with pytest.raises(ArenaError, match="Wait until both answers have finished"):
        send_follow_up(battle, "And snow?")
    gate.set()
    seen = list(progresses)  # the page goes on following the answers after the vote
    for thread in threads:
        thread.join(WAIT_S)

    assert not battle.stopped.is_set() and all(side.finished for side in battle.sides)
    assert seen[-1].vote == "A is better" and seen[-1].finished == (True, True)  # each side shows it finished
    assert seen[-1].early_vote and battle.turn.finished_at_vote == (False, False)
    assert seen[-1].answers == tuple((side.text,) for side in battle.sides)
    ((prompt, candidates, judgment),) = stored_turns(sessions)
    assert [c.completion for c in candidates] == [[{"role": "assistant", "content": s.text}] for s in battle.sides]
    assert all(len(side.text) > c.settings["shown_chars"] for side, c in zip(battle.sides, candidates))
    assert [(c.settings["finished"], c.settings["complete"]) for c in candidates] == [(False, True)] * 2
    assert judgment.preference == 2 and judgment.flags == []
    assert len(progress.answers[0][0]) <= candidates[0].settings["shown_chars"]


def test_a_vote_before_both_finished_counts_for_the_leaderboard_only(store):
    _, sessions = store
    spec = arena_campaign(sessions, arena_min_seconds=0)
    early = answered(spec, seed=1)  # B still streaming at the vote
    whole = answered(spec, seed=2)
    whole.finish(1, now=103.0)
    whole.show()
    for battle in (early, whole):
        cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="A is better", now=110.0)
    assert early.progress().early_vote and not whole.progress().early_vote
    with sessions.begin() as session:
        items = load_items(session, campaign_by_name(session=session, name="arena").id)
        rows, left_out = export_rows(items, ExportArguments(campaign="arena"))
    assert len(battle_records(items)) == 2  # the leaderboard counts both votes
    assert len(rows) == 1 and rows[0]["meta"]["task_id"] == items[1].task.id  # training data: the whole one only
    assert sum(left_out.values()) == 1  # and the export says it left one out


def test_a_follow_up_goes_to_both_with_their_own_answers_and_is_stored_as_the_second_turn(store, tiny_policy_dir):
    _, sessions = store
    spec = arena_campaign(
        sessions, arena_min_seconds=0, arena_max_new_tokens=6, policies=tiny_policies(tiny_policy_dir)
    )
    stream = GatedStream()
    battle = start_battle(spec, rater="ana", prompt="Tell me about rain.", rng=random.Random(0))
    run_battle(battle, stream)
    list(follow(battle, poll_seconds=0.01))
    with pytest.raises(ArenaError, match="Vote on these answers first"):
        send_follow_up(battle, "And snow?")
    cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="A is better")
    first = [side.text for side in battle.sides]
    with pytest.raises(ArenaError, match="Type a follow-up"):
        send_follow_up(battle, "  ")
    send_follow_up(battle, "And snow?")
    threads = run_battle(battle, stream)
    progress = list(follow(battle, poll_seconds=0.01))[-1]
    for thread in threads:
        thread.join(WAIT_S)
    assert progress.prompts == ("Tell me about rain.", "And snow?") and progress.names_known
    cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="B is better")
    with pytest.raises(ArenaError, match="already voted"):
        cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="Tie")

    def conversation(index: int) -> list[dict]:
        return [
            {"role": "assistant", "content": first[index]},
            {"role": "user", "content": "And snow?"},
            {"role": "assistant", "content": battle.sides[index].text},
        ]

    # Each model was sent its own side of the conversation.
    assert sorted(map(str, stream.sent[2:])) == sorted(
        str([{"role": "user", "content": "Tell me about rain."}, *conversation(index)[:2]]) for index in (0, 1)
    )
    (prompt_1, _, judgment_1), (prompt_2, candidates, judgment_2) = stored_turns(sessions)
    assert (prompt_1.external_id, prompt_2.external_id) == (f"arena-{battle.id}", f"arena-{battle.id}-turn-2")
    assert prompt_2.messages == [{"role": "user", "content": "Tell me about rain."}]  # the prefix both sides share
    assert [c.completion for c in candidates] == [conversation(0), conversation(1)]
    assert [c.settings["turn"] for c in candidates] == [2, 2]
    assert (judgment_1.preference, judgment_1.flags) == (2, [])
    # The names were shown after the first vote: the second is kept, but not counted blind.
    assert (judgment_2.preference, judgment_2.flags) == (-2, [IDENTITY_LEAK])

    with sessions.begin() as session:
        items = load_items(session, campaign_by_name(session=session, name="arena").id)
        rows, _ = export_rows(items, ExportArguments(campaign="arena", include_identity_leaks=True))
    second = next(row for row in rows if row["meta"]["prompt_id"].endswith("turn-2"))
    assert second["prompt"] == prompt_2.messages
    assert (second["chosen"], second["rejected"]) == (conversation(1), conversation(0))  # B was better
