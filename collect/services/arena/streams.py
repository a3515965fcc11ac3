"""Streaming a battle's turn: both policies answer at once, each in its own thread, and the page follows them.

A turn's streams run until both answers end. Before a vote they stop when the rater moves
on or the page goes away, and when one side fails (the turn could not be judged); once the
turn has a vote they always run to the end, so the stored battle holds the whole answers.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator

from collect.domain.campaign import PolicySpec
from collect.services.arena.state import SIDES, Battle, Progress, Turn

logger = logging.getLogger(__name__)

# A stream function: (policy's model spec, conversation messages, generation settings) -> text pieces.
Stream = Callable[[str, list[dict], dict], Iterator[str]]


def arena_generation(policy: PolicySpec, max_new_tokens: int) -> dict:
    """A policy's generation settings in the arena: its own, with the campaign's arena answer length."""
    return {**policy.generation, "max_new_tokens": max_new_tokens}


def run_battle(battle: Battle, stream: Stream) -> list[threading.Thread]:
    """Start both answers of the current turn streaming, each in its own thread; returns the (running) threads.

    Each side is sent its own conversation: every prompt so far and its own earlier answers.
    """
    turn = battle.turn
    threads = [
        threading.Thread(
            target=_run_side,
            args=(battle, turn, index, stream, battle.conversation(index)),
            daemon=True,
            name=f"plumb-arena-{SIDES[index]}",
        )
        for index in range(2)
    ]
    for thread in threads:
        thread.start()
    return threads


def _run_side(battle: Battle, turn: Turn, index: int, stream: Stream, messages: list[dict]) -> None:
    side = turn.sides[index]
    pieces = None
    try:
        pieces = stream(side.policy.model, messages, arena_generation(side.policy, battle.max_new_tokens))
        for piece in pieces:
            turn.add_text(index, piece)
            if turn.stopped.is_set():
                return
        turn.finish(index)
    except Exception as error:  # a policy that fails to load or answer: the page says so, the log has the traceback
        logger.exception("arena: policy '%s' failed", side.policy.name)
        message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": ")
        battle.fail(index, message, turn=turn)
    finally:
        if hasattr(pieces, "close"):
            pieces.close()  # stops a local model's generation thread at its next token


def follow(battle: Battle, *, poll_seconds: float = 0.1) -> Iterator[Progress]:
    """Yield the current turn's progress whenever it changes, until it settles: both answers ended and a vote was
    cast or can be, a stop before a vote, or a failed answer before a vote.

    Closing it early (the page went away) stops the turn's streams unless it has a vote.
    """
    turn, last = battle.turn, None
    try:
        while True:
            # `fail` sets the error before it stops the turn: reading `stopped` first, a failure is still shown.
            stopped = turn.stopped.is_set()
            progress = battle.progress()
            if stopped and progress.vote is None and not any(progress.errors):
                return
            if progress != last:
                yield progress
                last = progress
            if _settled(battle, turn, progress):
                return
            time.sleep(poll_seconds)
    finally:
        battle.stop(turn)  # stops nothing once both ended or the turn has a vote
        turn.followed.set()


def _settled(battle: Battle, turn: Turn, progress: Progress) -> bool:
    # Under the vote lock, so a vote either comes before this check (and this loop goes on to show it) or finds
    # `followed` set (and its own handler shows it): a vote is never left unshown.
    with battle.voting:
        if turn.vote is None:
            settled = any(progress.errors) or (progress.can_vote and progress.ended)
        else:
            settled = progress.vote is not None and progress.ended
        if settled:
            turn.followed.set()
        return settled
