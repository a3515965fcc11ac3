"""A battle's votes in the store: each voted turn as an arena task with its two answers and the judgment.

A multi-turn battle is stored turn by turn, in the data contract's terms: every turn's prompt
is the battle's first user message (the prefix both sides share), and each candidate is that
side's own conversation after it, ending in its answer to the voted turn. The first turn's
prompt id is "arena-<battle id>", later ones "arena-<battle id>-turn-<n>"; the unique prompt
id per campaign is what refuses a second vote on a turn.

A candidate's settings say what the vote saw: `finished` (the answer had ended and the page
showed all of it when the vote was cast: the export leaves out a vote where one had not, it
counts for the leaderboard only), `shown_chars` (how much the rater had seen), `complete`
(the stored text is the whole answer: an answer still streaming at the vote is stored whole
when it ends, `store_whole_answers`), `battle` and `turn`.
"""

import logging
import time
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect.domain.answers import ARENA_VOTES, IDENTITY_LEAK
from collect.services.arena.state import ArenaError, Battle, Turn
from collect.services.arena.streams import arena_generation
from collect.services.generation import settings_of
from collect.store import (
    Assignment,
    Campaign,
    Candidate,
    Judgment,
    Prompt,
    Rater,
    Task,
    add_candidate,
    add_prompt,
    ensure_policy,
    record_event,
    record_judgment,
)
from collect.store.limits import SECONDS_SPENT_MAX
from collect.store.models import utcnow

logger = logging.getLogger(__name__)


def prompt_external_id(battle: Battle, turn: Turn) -> str:
    """The stored prompt id of one turn of `battle`: "arena-<id>" for the first, "arena-<id>-turn-<n>" after."""
    number = battle.turns.index(turn) + 1
    return f"arena-{battle.id}" if number == 1 else f"arena-{battle.id}-turn-{number}"


def completion(battle: Battle, turn: Turn, index: int) -> list[dict]:
    """Side `index`'s stored completion for `turn`: its conversation after the first prompt, ending in its answer."""
    return [
        *battle.conversation(index, through=turn)[1:],
        {"role": "assistant", "content": turn.sides[index].text},
    ]


def record_vote(
    *, session: Session, campaign: Campaign, battle: Battle, rater: Rater, vote: str, now: float | None = None
) -> Judgment:
    """Store the vote on the current turn: its prompt, both answers so far, an arena task, assignment and judgment.

    Refuses (`ArenaError`) a vote before `battle.can_vote`, a second vote on the turn, another
    rater's battle and an unknown vote. The vote is flagged as an identity leak (kept, left out
    of the leaderboard and the training data by default) when an answer named its own model or
    the names were revealed by an earlier turn's vote. The caller holds `battle.voting`.
    """
    if vote not in ARENA_VOTES:
        raise ArenaError(f"unknown vote {vote!r} (choose one of: {', '.join(ARENA_VOTES)})")
    if battle.rater != rater.name:
        raise ArenaError("this battle was started by another rater")
    turn = battle.turn
    external_id = prompt_external_id(battle, turn)
    voted = select(Prompt.id).where(Prompt.campaign_id == campaign.id, Prompt.external_id == external_id)
    if turn.vote is None and session.scalar(voted) is not None:
        raise ArenaError("You already voted on this turn. Send a follow-up or start a new battle.")
    refusal = battle.refusal(now)
    if refusal:
        raise ArenaError(refusal)
    now = time.monotonic() if now is None else now
    finished = turn.finished_as_shown()
    prompt = add_prompt(
        session=session,
        campaign=campaign,
        external_id=external_id,
        messages=[{"role": "user", "content": battle.turns[0].prompt}],
    )
    candidates = []
    for index, side in enumerate(turn.sides):
        policy = ensure_policy(session=session, campaign=campaign, name=side.policy.name, spec=side.policy.model)
        settings = {
            **settings_of(side.policy),
            **arena_generation(side.policy, battle.max_new_tokens),
            "finished": finished[index],
            "shown_chars": len(side.shown),
            "complete": side.finished,
            "battle": f"arena-{battle.id}",
            "turn": battle.turns.index(turn) + 1,
        }
        candidates.append(
            add_candidate(
                session=session,
                prompt=prompt,
                policy=policy,
                settings=settings,
                completion=completion(battle, turn, index),
            )
        )
    task = Task(
        campaign_id=campaign.id,
        prompt_id=prompt.id,
        kind="pairwise",
        source="arena",
        target_overlap=1,
        candidate_ids=[c.id for c in candidates],
    )
    session.add(task)
    session.flush()
    voted_at = utcnow()
    assignment = Assignment(
        task_id=task.id,
        rater_id=rater.id,
        candidate_order=[0, 1],
        state="judged",
        leased_at=voted_at - timedelta(seconds=now - turn.created_at),
        expires_at=voted_at,
    )
    session.add(assignment)
    session.flush()
    leaks = battle.leaks()
    judgment = record_judgment(
        session=session,
        assignment=assignment,
        flags=[IDENTITY_LEAK] if leaks or battle.names_known else [],
        seconds_spent=min(now - turn.created_at, SECONDS_SPENT_MAX),  # a battle left open for days still counts
        **ARENA_VOTES[vote],
    )
    record_event(
        session=session,
        action="arena.voted",
        rater=rater,
        campaign=campaign,
        task_id=task.id,
        vote=vote,
        identity_leak=leaks,
        names_known=battle.names_known,
        both_finished=all(finished),
        turn=battle.turns.index(turn) + 1,
    )
    return judgment


def store_whole_answers(sessions, *, battle: Battle, turn: Turn, candidate_ids: list[int]) -> None:
    """Replace the stored answers of a voted `turn` by the whole ones, once its streams have ended.

    `complete` becomes whether the side finished (a side that failed after the vote keeps
    what it said); `finished`, what the vote saw, stays as it was.
    """
    try:
        with sessions.begin() as session:
            for index, candidate_id in enumerate(candidate_ids):
                candidate = session.get(Candidate, candidate_id)
                candidate.completion = completion(battle, turn, index)
                candidate.settings = {**candidate.settings, "complete": turn.sides[index].finished}
    except Exception:  # a stream thread calls this: the vote is stored already, only the rest of the text is lost
        logger.exception("arena: could not store the whole answers of battle %s", battle.id)
