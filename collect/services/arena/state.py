"""A live battle in memory: two policies answering a rater's prompts turn by turn, one vote per turn.

A `Battle` is a conversation with two anonymous policies. Each `Turn` holds the rater's
prompt, the two answers as they stream (`Side`) and, once cast, the vote. Answers run to
their end whatever the rater does once a turn has a vote: a vote cast before both had
finished is kept, and counts for the leaderboard only (`Turn.finished_at_vote` says so).
Times are `time.monotonic()` seconds, injectable (`now=`) so tests never read the clock.
"""

import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from collect.domain.campaign import PolicySpec
from collect.services.arena.identity import names_own_model
from collect.store import StoreError

SIDES = "AB"
# Each turn resends the whole conversation to both models; Chatbot Arena caps its conversations too.
MAX_TURNS = 8


class ArenaError(StoreError):
    """A battle cannot be started, continued or voted on as asked; the message says why, in the rater's words."""


@dataclass
class Side:
    """One policy's answer in one turn as it streams: its text so far, when its first text came, whether it ended."""

    policy: PolicySpec
    text: str = ""
    shown: str = ""  # the text last sent to the rater's page: what a vote is a vote on
    started_at: float | None = None  # monotonic seconds of the first piece of text
    finished: bool = False
    error: str | None = None

    @property
    def ended(self) -> bool:
        """Finished or failed: nothing more will come."""
        return self.finished or self.error is not None


@dataclass
class Turn:
    """One prompt of the rater and the two answers to it; `vote` and what it saw once the rater voted."""

    prompt: str
    sides: tuple[Side, Side]
    created_at: float
    vote: str | None = None
    finished_at_vote: tuple[bool, bool] | None = None  # per side: it had finished, and the page showed all of it
    leaks: list[str] = field(default_factory=list)  # sides whose answer, as shown at the vote, named its model
    stopped: threading.Event = field(default_factory=threading.Event, compare=False)
    followed: threading.Event = field(default_factory=threading.Event, compare=False)  # `follow` has ended
    _when_ended: list[Callable[[], None]] = field(default_factory=list, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    @property
    def ended(self) -> bool:
        """Both answers finished or failed."""
        return all(side.ended for side in self.sides)

    @property
    def early_vote(self) -> bool:
        """A vote was cast before both answers had finished: it counts for the leaderboard only."""
        return self.finished_at_vote is not None and not all(self.finished_at_vote)

    def add_text(self, index: int, piece: str, *, now: float | None = None) -> None:
        """Append a streamed piece to side `index` (0 = A); its first text starts that side's clock."""
        side = self.sides[index]
        if piece and side.started_at is None:
            side.started_at = time.monotonic() if now is None else now
        side.text += piece

    def finish(self, index: int, *, now: float | None = None) -> None:
        """Side `index` has said all it will; an empty answer counts as started when it ends (it can be judged)."""
        side = self.sides[index]
        if side.started_at is None:
            side.started_at = time.monotonic() if now is None else now
        side.finished = True
        self.side_ended()

    def finished_as_shown(self) -> tuple[bool, bool]:
        """Per side: the answer had ended and the page showed all of it (read under the vote lock, so `shown` holds)."""
        return tuple(side.finished and side.shown == side.text for side in self.sides)

    def when_ended(self, callback: Callable[[], None]) -> None:
        """Call `callback` once both answers have ended: now if they have, else from the stream that ends last."""
        with self._lock:
            if not self.ended:
                self._when_ended.append(callback)
                return
        callback()

    def side_ended(self) -> None:
        """A side finished or failed: run the `when_ended` callbacks if that was the last one."""
        with self._lock:
            callbacks, self._when_ended = (self._when_ended, []) if self.ended else ([], self._when_ended)
        for callback in callbacks:
            callback()


@dataclass
class Progress:
    """What the page shows at one moment of a battle: every turn's prompt and answers, the current turn's state."""

    prompts: tuple[str, ...]
    answers: tuple[tuple[str, ...], tuple[str, ...]]  # per side, per turn: the text shown
    finished: tuple[bool, bool]
    errors: tuple[str | None, str | None]
    can_vote: bool
    vote: str | None
    early_vote: bool
    leaks: tuple[str, ...]
    names_known: bool  # the rater saw the names before this turn's vote (a follow-up after a reveal)
    ended: bool
    can_follow_up: bool


@dataclass
class Battle:
    """Two policies answering one rater, turn by turn; the current turn is the last one."""

    rater: str
    policies: tuple[PolicySpec, PolicySpec]
    min_seconds: float
    max_new_tokens: int
    turns: list[Turn]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    voting: threading.Lock = field(default_factory=threading.Lock, compare=False)  # one vote at a time

    @property
    def turn(self) -> Turn:
        """The current (last) turn."""
        return self.turns[-1]

    @property
    def sides(self) -> tuple[Side, Side]:
        """The current turn's two answers (A, B)."""
        return self.turn.sides

    @property
    def vote(self) -> str | None:
        """The current turn's vote, None before it."""
        return self.turn.vote

    @property
    def stopped(self) -> threading.Event:
        """Set when the current turn's streams were asked to stop."""
        return self.turn.stopped

    @property
    def followed(self) -> threading.Event:
        """Set when the page stopped following the current turn (`streams.follow` ended)."""
        return self.turn.followed

    @property
    def created_at(self) -> float:
        """When the current turn started."""
        return self.turn.created_at

    def add_turn(self, prompt: str, *, now: float | None = None) -> Turn:
        """Start a new turn of `prompt`, answered by the same policies in the same places."""
        turn = Turn(
            prompt=prompt,
            sides=tuple(Side(policy) for policy in self.policies),
            created_at=time.monotonic() if now is None else now,
        )
        self.turns.append(turn)
        return turn

    def conversation(self, index: int, *, through: Turn | None = None) -> list[dict]:
        """Side `index`'s conversation as messages, up to the prompt of `through` (the current turn by default):
        every prompt, each followed by this side's own answer to it."""
        through = through or self.turn
        messages = []
        for turn in self.turns:
            messages.append({"role": "user", "content": turn.prompt})
            if turn is through:
                return messages
            messages.append({"role": "assistant", "content": turn.sides[index].text})
        raise ValueError("that turn is not one of this battle's")

    def add_text(self, index: int, piece: str, *, now: float | None = None) -> None:
        """Append a streamed piece to the current turn's side `index` (0 = A)."""
        self.turn.add_text(index, piece, now=now)

    def finish(self, index: int, *, now: float | None = None) -> None:
        """The current turn's side `index` has said all it will."""
        self.turn.finish(index, now=now)

    def fail(self, index: int, error: str, *, turn: Turn | None = None) -> None:
        """Side `index` could not answer: before a vote the turn can no longer be judged, so the other side stops."""
        turn = turn or self.turn
        turn.sides[index].error = error
        self.stop(turn)
        turn.side_ended()

    def stop(self, turn: Turn | None = None) -> None:
        """Ask a turn's streams (the current one's by default) to stop unless it has a vote: those run to the end."""
        turn = turn or self.turn
        with self.voting:  # a vote being recorded now must find its streams running
            if turn.vote is None:
                turn.stopped.set()

    def show(self) -> tuple[str, str]:
        """The two texts as they are now, remembered as what the rater's page shows (not while a vote records it)."""
        # A vote judges `shown`: an update between its check and its record would make them differ.
        if self.voting.acquire(blocking=False):
            try:
                for side in self.sides:
                    side.shown = side.text
            finally:
                self.voting.release()
        return self.sides[0].shown, self.sides[1].shown

    def vote_opens_at(self) -> float | None:
        """When a vote starts to count: `min_seconds` after the later of the two starts; None before both started."""
        starts = [side.started_at for side in self.sides]
        return None if None in starts else max(starts) + self.min_seconds

    def can_vote(self, now: float | None = None) -> bool:
        """Both answers have started, the reading time has passed, neither failed, and no vote was cast yet."""
        return self.refusal(now) is None

    def refusal(self, now: float | None = None) -> str | None:
        """Why a vote now would not count, in the rater's words; None when it would."""
        if self.vote is not None:
            return f"You already voted on this turn ({self.vote}). Send a follow-up or start a new battle."
        failed = [SIDES[i] for i, side in enumerate(self.sides) if side.error is not None]
        if failed:
            return f"Model {failed[0]} could not answer, so this battle cannot be judged. Start a new battle."
        opens = self.vote_opens_at()
        if opens is None:
            return "Wait until both answers have started before voting."
        wait = opens - (time.monotonic() if now is None else now)
        return f"Read both answers first: voting opens in {math.ceil(wait)} s." if wait > 0 else None

    def follow_up_refusal(self) -> str | None:
        """Why the rater cannot send a follow-up now, in their words; None when they can."""
        if self.vote is None:
            return "Vote on these answers first."
        if any(side.error is not None for side in self.sides):
            return "A model could not answer, so this battle cannot go on. Start a new battle."
        if not self.turn.ended:
            return "Wait until both answers have finished."
        if len(self.turns) >= MAX_TURNS:
            return f"A battle has at most {MAX_TURNS} turns. Start a new battle."
        return None

    def leaks(self) -> list[str]:
        """The sides ("A", "B") whose shown answer names its own model (an identity leak)."""
        return [SIDES[i] for i, side in enumerate(self.sides) if names_own_model(side.shown, side.policy)]

    @property
    def names_known(self) -> bool:
        """The names were revealed before the current turn's vote: an earlier turn of this battle has one."""
        return any(turn.vote is not None for turn in self.turns[:-1])

    def progress(self, now: float | None = None) -> Progress:
        """The battle as the page shows it now (updating what the page shows of the current turn)."""
        self.show()
        turn = self.turn
        return Progress(
            prompts=tuple(t.prompt for t in self.turns),
            answers=tuple(
                tuple(t.sides[i].shown if t is turn else t.sides[i].text for t in self.turns) for i in (0, 1)
            ),
            finished=tuple(side.finished for side in turn.sides),
            errors=tuple(side.error for side in turn.sides),
            can_vote=self.can_vote(now),
            vote=turn.vote,
            early_vote=turn.early_vote,
            leaks=tuple(turn.leaks),
            names_known=self.names_known,
            ended=turn.ended,
            can_follow_up=self.follow_up_refusal() is None,
        )
