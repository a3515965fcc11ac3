"""Arena battles on the server: a rater's own prompt, two anonymous policies answering at once, a vote per turn.

A battle lives in memory while its answers stream (`state.Battle`, kept by `ArenaBattles`;
`streams` runs and follows them) and reaches the store turn by turn, when the rater votes
(`cast_vote`, `votes.record_vote`). A vote counts once both answers have started and the
campaign's `arena_min_seconds` of reading time have passed since the later start; the
server checks this, whatever the page shows. The vote never cuts the answers off: they
stream on to their end and are then stored whole, and a vote cast before both had finished
counts for the leaderboard only. After a vote the rater may send a follow-up
(`send_follow_up`): both policies answer it with their own side of the conversation.
No Gradio here: the app's arena tab drives these functions.
"""

import random
import threading
from collections import OrderedDict

from sqlalchemy.exc import IntegrityError

from collect.domain.campaign import CampaignSpec
from collect.services.arena.state import ArenaError, Battle, Turn
from collect.services.arena.votes import record_vote, store_whole_answers
from collect.store import Judgment, StoreError, Task, campaign_by_name, rater_by_name


def start_battle(
    spec: CampaignSpec,
    *,
    rater: str,
    prompt: str,
    rng: random.Random | None = None,
    now: float | None = None,
    sessions=None,
    campaign: str | None = None,
) -> Battle:
    """A new battle of two different policies of the campaign for `prompt`, drawn by its `arena_pairing` (sides random).

    An `informative` campaign weighs the pairs by its battles so far, read from `sessions`
    (campaign `campaign`, by default the spec's name) through a cached fit (`pairing_fits.FITS`).
    """
    if not spec.arena:  # the tab is hidden then, but its events can still be called through the API
        raise ArenaError("This campaign has no arena.")
    if spec.kind != "pairwise":  # its exports would mix pairwise arena tasks into rankings or ratings
        raise ArenaError(f"The arena is for pairwise campaigns only; this one is a {spec.kind} campaign.")
    if not prompt.strip():
        raise ArenaError("Type a prompt first.")
    if len(spec.policies) < 2:
        raise ArenaError("The arena needs a campaign with at least two policies.")
    rng = rng or random.SystemRandom()
    if spec.arena_pairing == "informative":
        if sessions is None:  # a caller that forgot the store would silently get uniform pairs
            raise ValueError("informative arena pairing reads the battles so far: pass `sessions`")
        # Here, not at the top: the fit needs scipy, which a uniform campaign's app never loads.
        from collect.services.arena.pairing import draw_pair
        from collect.services.arena.pairing_fits import FITS

        names = tuple(policy.name for policy in spec.policies)
        weights = FITS.weights(sessions, campaign or spec.name, names)
        first, second = draw_pair(spec.policies, weights, rng)
    else:
        first, second = rng.sample(spec.policies, 2)
    battle = Battle(
        rater=rater,
        policies=(first, second),
        min_seconds=float(spec.arena_min_seconds),
        max_new_tokens=spec.arena_max_new_tokens,
        turns=[],
    )
    battle.add_turn(prompt.strip(), now=now)
    return battle


def send_follow_up(battle: Battle, prompt: str, *, now: float | None = None) -> Turn:
    """Add the rater's follow-up `prompt` as the battle's next turn; `ArenaError` when it cannot go on yet."""
    if not prompt.strip():
        raise ArenaError("Type a follow-up first.")
    refusal = battle.follow_up_refusal()
    if refusal:
        raise ArenaError(refusal)
    return battle.add_turn(prompt.strip(), now=now)


def check_rater(sessions, name: str) -> None:
    """`ArenaError` unless `name` is an active rater (a page opened before a deactivation still sends the login)."""
    try:
        with sessions.begin() as session:
            rater_by_name(session=session, name=name)
    except StoreError as error:
        raise ArenaError(str(error)) from error


def cast_vote(
    sessions, *, campaign: str, battle: Battle, rater_name: str, vote: str, now: float | None = None
) -> Judgment:
    """Record the rater's vote on the current turn in one committed transaction; its answers stream on.

    An answer still streaming is stored whole once it ends (`store_whole_answers`).
    `ArenaError` when the vote is refused, including the loser of two votes racing on one
    turn (the store's unique prompt id decides).
    """
    turn = battle.turn
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
                candidate_ids = list(session.get(Task, judgment.task_id).candidate_ids)
        except IntegrityError as error:
            raise ArenaError("You already voted on this turn. Send a follow-up or start a new battle.") from error
        turn.finished_at_vote, turn.leaks = turn.finished_as_shown(), battle.leaks()
        turn.vote = vote
    if not all(side.finished for side in turn.sides):
        turn.when_ended(lambda: store_whole_answers(sessions, battle=battle, turn=turn, candidate_ids=candidate_ids))
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
        """Keep `battle` (stopping the unvoted streams of the oldest one when there are too many); returns it."""
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
        """Forget rater `rater`'s battle `battle_id` (they moved on), stopping its answers unless voted on."""
        with self._lock:
            battle = self._battles.get(battle_id or "")
            if battle is None or battle.rater != rater:
                return
            del self._battles[battle.id]
        battle.stop()
