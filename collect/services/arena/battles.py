"""Arena battles on the server: a rater's own prompt, two anonymous policies answering at once, one vote.

A battle lives in memory while its answers stream (`Battle`, kept by `ArenaBattles`) and
reaches the store only when the rater votes (`record_vote`): the prompt, the two answers
as shown at that moment, a task of source "arena" and the judgment, in one transaction.
A vote counts only once both answers have started and the campaign's `arena_min_seconds`
of reading time have passed since the later start; the server checks this, whatever the
page shows. No Gradio here: the app's arena tab drives these functions.
"""

import logging
import math
import random
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from collect.domain.answers import ARENA_VOTES, IDENTITY_LEAK
from collect.domain.campaign import CampaignSpec, PolicySpec
from collect.services.generation import settings_of
from collect.store import (
    Assignment,
    Campaign,
    Judgment,
    Prompt,
    Rater,
    StoreError,
    Task,
    add_candidate,
    add_prompt,
    campaign_by_name,
    ensure_policy,
    rater_by_name,
    record_event,
    record_judgment,
)
from collect.store.limits import SECONDS_SPENT_MAX
from collect.store.models import utcnow

logger = logging.getLogger(__name__)

SIDES = "AB"
# A stream function: (policy's model spec, prompt messages, generation settings) -> text pieces.
Stream = Callable[[str, list[dict], dict], Iterator[str]]


class ArenaError(StoreError):
    """A battle cannot be started or voted on as asked; the message says why, in the rater's words."""


@dataclass
class Side:
    """One policy's answer as it streams: its text so far, when its first text came, whether it ended."""

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
class Battle:
    """Two policies answering one rater's prompt; times are `time.monotonic()` seconds (injectable `now`)."""

    rater: str
    prompt: str
    sides: tuple[Side, Side]
    min_seconds: float
    max_new_tokens: int
    created_at: float
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    vote: str | None = None
    stopped: threading.Event = field(default_factory=threading.Event, compare=False)
    voting: threading.Lock = field(default_factory=threading.Lock, compare=False)  # one vote at a time
    followed: threading.Event = field(default_factory=threading.Event, compare=False)  # `follow` has ended

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

    def fail(self, index: int, error: str) -> None:
        """Side `index` could not answer: the battle can no longer be voted on, so the other side stops too."""
        self.sides[index].error = error
        self.stop()

    def show(self) -> tuple[str, str]:
        """The two texts as they are now, remembered as what the rater's page shows; frozen once a vote starts."""
        # A vote stores `shown` and reveals it: an update between the two would make them differ.
        if self.voting.acquire(blocking=False):
            try:
                if self.vote is None:
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
            return f"You already voted on this battle ({self.vote}). Start a new battle."
        failed = [SIDES[i] for i, side in enumerate(self.sides) if side.error is not None]
        if failed:
            return f"Model {failed[0]} could not answer, so this battle cannot be judged. Start a new battle."
        opens = self.vote_opens_at()
        if opens is None:
            return "Wait until both answers have started before voting."
        wait = opens - (time.monotonic() if now is None else now)
        return f"Read both answers first: voting opens in {math.ceil(wait)} s." if wait > 0 else None

    def leaks(self) -> list[str]:
        """The sides ("A", "B") whose shown answer names its own model (an identity leak)."""
        return [SIDES[i] for i, side in enumerate(self.sides) if names_own_model(side.shown, side.policy)]

    def stop(self) -> None:
        """Ask both answers' streams to stop (after a vote, or when the rater moves on)."""
        self.stopped.set()


def start_battle(
    spec: CampaignSpec, *, rater: str, prompt: str, rng: random.Random | None = None, now: float | None = None
) -> Battle:
    """A new battle of two different policies of the campaign, drawn at random (their order too) for `prompt`."""
    if not spec.arena:  # the tab is hidden then, but its events can still be called through the API
        raise ArenaError("This campaign has no arena.")
    if spec.kind != "pairwise":  # its exports would mix pairwise arena tasks into rankings or ratings
        raise ArenaError(f"The arena is for pairwise campaigns only; this one is a {spec.kind} campaign.")
    if not prompt.strip():
        raise ArenaError("Type a prompt first.")
    if len(spec.policies) < 2:
        raise ArenaError("The arena needs a campaign with at least two policies.")
    first, second = (rng or random.SystemRandom()).sample(spec.policies, 2)
    return Battle(
        rater=rater,
        prompt=prompt.strip(),
        sides=(Side(first), Side(second)),
        min_seconds=float(spec.arena_min_seconds),
        max_new_tokens=spec.arena_max_new_tokens,
        created_at=time.monotonic() if now is None else now,
    )


def check_rater(sessions, name: str) -> None:
    """`ArenaError` unless `name` is an active rater (a page opened before a deactivation still sends the login)."""
    try:
        with sessions.begin() as session:
            rater_by_name(session=session, name=name)
    except StoreError as error:
        raise ArenaError(str(error)) from error


def arena_generation(policy: PolicySpec, max_new_tokens: int) -> dict:
    """A policy's generation settings in the arena: its own, with the campaign's arena answer length."""
    return {**policy.generation, "max_new_tokens": max_new_tokens}


def run_battle(battle: Battle, stream: Stream) -> list[threading.Thread]:
    """Start both answers streaming into `battle`, each in its own thread; returns the threads (already running)."""
    messages = [{"role": "user", "content": battle.prompt}]
    threads = [
        threading.Thread(
            target=_run_side, args=(battle, index, stream, messages), daemon=True, name=f"plumb-arena-{SIDES[index]}"
        )
        for index in range(2)
    ]
    for thread in threads:
        thread.start()
    return threads


def _run_side(battle: Battle, index: int, stream: Stream, messages: list[dict]) -> None:
    side = battle.sides[index]
    pieces = None
    try:
        pieces = stream(side.policy.model, messages, arena_generation(side.policy, battle.max_new_tokens))
        for piece in pieces:
            battle.add_text(index, piece)
            if battle.stopped.is_set():
                return
        battle.finish(index)
    except Exception as error:  # a policy that fails to load or answer: the page says so, the log has the traceback
        logger.exception("arena: policy '%s' failed", side.policy.name)
        battle.fail(index, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": "))
    finally:
        if hasattr(pieces, "close"):
            pieces.close()  # stops a local model's generation thread at its next token


@dataclass
class Progress:
    """What the page shows at one moment of a battle."""

    texts: tuple[str, str]
    can_vote: bool
    errors: tuple[str | None, str | None]


def follow(battle: Battle, *, poll_seconds: float = 0.1) -> Iterator[Progress]:
    """Yield the battle's progress whenever it changes, until a vote, a stop or a failed answer, or until
    both answers ended and voting is open (streams that end early still wait out the reading time).

    Closing it early (the page went away) stops the battle's streams unless a vote was cast.
    """
    last = None
    try:
        while battle.vote is None:
            # A failed side stops the battle too (`fail`), and the page must still be told why: `stopped` is read
            # first, since `fail` sets the error before it stops.
            stopped = battle.stopped.is_set()
            failed = any(side.error is not None for side in battle.sides)
            if stopped and not failed:
                return
            texts = battle.show()
            progress = Progress(texts, battle.can_vote(), tuple(side.error for side in battle.sides))
            if progress != last:
                yield progress
                last = progress
            if failed or (progress.can_vote and all(side.ended for side in battle.sides)):
                return
            time.sleep(poll_seconds)
    finally:
        if battle.vote is None:
            # After a normal end this stops nothing (both streams ended), and a vote does not need running streams.
            battle.stop()
        battle.followed.set()


def names_own_model(text: str, policy: PolicySpec) -> bool:
    """Whether `text` names the policy or one of its aliases: case-insensitive, as whole words."""
    return any(
        re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, flags=re.IGNORECASE)
        for name in [policy.name, *(policy.aliases or default_aliases(policy))]
        if name.strip()
    )


def default_aliases(policy: PolicySpec) -> list[str]:
    """Names the policy's model would call itself by, when the campaign lists none.

    Models name their family ("I am Llama", "I'm Qwen"), not the full repo id, so a Hub id
    or GGUF file gives its name's family: its leading letters ("Qwen") and first word
    ("Qwen2.5"). "default" is SmolLM2. A local directory gives none: its name is whatever
    its trainer chose ("outputs/dpo", "model"), and matching it would flag ordinary words.
    A server (URL) gives the family of the model it was asked for (`generation['model']`).
    """
    model = policy.model
    if model == "default":
        return ["SmolLM", "SmolLM2"]
    if model.startswith(("http://", "https://")):
        model = str(policy.generation.get("model", ""))
    elif model.endswith(".gguf"):
        model = Path(model).stem
    elif Path(model).expanduser().exists() or model.startswith((".", "/", "~")):
        return []
    return _family(model.rsplit("/", 1)[-1])


def _family(repo_name: str) -> list[str]:
    first_word = re.split(r"[-_ ]", repo_name, maxsplit=1)[0]
    letters = re.match(r"[A-Za-z]*", first_word).group(0)
    # A family of one or two letters ("T5", "Yi") would match too many ordinary words to mean a leak.
    return sorted({name for name in (letters, first_word) if len(name) >= 3}, key=len)


def record_vote(
    *, session: Session, campaign: Campaign, battle: Battle, rater: Rater, vote: str, now: float | None = None
) -> Judgment:
    """Store a voted battle: prompt, both answers as shown, an arena task, the voter's assignment and judgment.

    Refuses (`ArenaError`) a vote before `battle.can_vote`, a second vote on the battle
    (its prompt's external_id "arena-<battle id>" is unique in the store), another rater's
    battle and an unknown vote. An answer naming its own model flags the vote as an
    identity leak: kept, and left out of the leaderboard by default.
    """
    if vote not in ARENA_VOTES:
        raise ArenaError(f"unknown vote {vote!r} (choose one of: {', '.join(ARENA_VOTES)})")
    if battle.rater != rater.name:
        raise ArenaError("this battle was started by another rater")
    external_id = f"arena-{battle.id}"
    voted = select(Prompt.id).where(Prompt.campaign_id == campaign.id, Prompt.external_id == external_id)
    if battle.vote is None and session.scalar(voted) is not None:
        raise ArenaError("You already voted on this battle. Start a new battle.")
    refusal = battle.refusal(now)
    if refusal:
        raise ArenaError(refusal)
    now = time.monotonic() if now is None else now
    prompt = add_prompt(
        session=session,
        campaign=campaign,
        external_id=external_id,
        messages=[{"role": "user", "content": battle.prompt}],
    )
    candidates = []
    for side in battle.sides:
        policy = ensure_policy(session=session, campaign=campaign, name=side.policy.name, spec=side.policy.model)
        settings = {
            **settings_of(side.policy),
            **arena_generation(side.policy, battle.max_new_tokens),
            "finished": side.finished and side.shown == side.text,
        }
        candidates.append(
            add_candidate(
                session=session,
                prompt=prompt,
                policy=policy,
                settings=settings,
                completion=[{"role": "assistant", "content": side.shown}],
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
        leased_at=voted_at - timedelta(seconds=now - battle.created_at),
        expires_at=voted_at,
    )
    session.add(assignment)
    session.flush()
    leaks = battle.leaks()
    judgment = record_judgment(
        session=session,
        assignment=assignment,
        flags=[IDENTITY_LEAK] if leaks else [],
        seconds_spent=min(now - battle.created_at, SECONDS_SPENT_MAX),  # a battle left open for days still counts
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
    )
    return judgment


def cast_vote(
    sessions, *, campaign: str, battle: Battle, rater_name: str, vote: str, now: float | None = None
) -> Judgment:
    """Record the rater's vote on `battle` in one committed transaction, then stop its streams.

    `ArenaError` when the vote is refused, including the loser of two votes racing on one
    battle (the store's unique prompt id decides).
    """
    with battle.voting:
        try:
            with sessions.begin() as session:
                rater = rater_by_name(session=session, name=rater_name)
                judgment = record_vote(
                    session=session,
                    campaign=campaign_by_name(session=session, name=campaign),
                    battle=battle,
                    rater=rater,
                    vote=vote,
                    now=now,
                )
        except IntegrityError as error:
            raise ArenaError("You already voted on this battle. Start a new battle.") from error
        battle.vote = vote
    battle.stop()
    return judgment


class ArenaBattles:
    """The battles of one app, by id, while they stream and until they are voted on; the oldest are forgotten.

    Shared by every browser session of the app (the page keeps only the battle's id), so
    `get` checks that the battle is the asking rater's. Thread-safe.
    """

    def __init__(self, *, keep: int = 1000):
        self._battles: OrderedDict[str, Battle] = OrderedDict()
        self._keep = keep
        self._lock = threading.Lock()

    def add(self, battle: Battle) -> Battle:
        """Keep `battle` (stopping the streams of the oldest one when there are too many); returns it."""
        with self._lock:
            self._battles[battle.id] = battle
            while len(self._battles) > self._keep:
                self._battles.popitem(last=False)[1].stop()
        return battle

    def get(self, battle_id: str | None, *, rater: str) -> Battle:
        """Rater `rater`'s battle `battle_id`; `ArenaError` when there is none of theirs by that id."""
        with self._lock:
            battle = self._battles.get(battle_id or "")
        if battle is None or battle.rater != rater:
            raise ArenaError("No battle to vote on: start one first.")
        return battle

    def discard(self, battle_id: str | None, *, rater: str) -> None:
        """Stop and forget rater `rater`'s battle `battle_id` (they moved on to a new one); others' are left alone."""
        with self._lock:
            battle = self._battles.get(battle_id or "")
            if battle is None or battle.rater != rater:
                return
            del self._battles[battle.id]
        battle.stop()
