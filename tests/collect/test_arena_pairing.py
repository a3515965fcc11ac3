"""Arena pairing: the `informative` rule's weights on hand-worked cases, its draw, and a campaign that uses it.

The rule (`collect.services.arena.pairing`): a pair's weight is the standard error of its
head-to-head win probability that one more battle removes, under the Bradley-Terry fit,
plus a share of uniform exploration. The store tests run on SQLite and PostgreSQL (`store`).
"""

import math
import random
from collections import Counter

import numpy as np
import pytest
from scipy.special import expit

from collect.domain.campaign import campaign_from_dict
from collect.services.arena.battles import cast_vote, start_battle
from collect.services.arena.pairing import (
    EXPLORATION,
    RIDGE,
    draw_pair,
    informative_gains,
    informative_weights,
    pair_weights,
    uniform_weights,
)
from collect.services.arena.pairing_fits import PairingFits
from collect.services.arena.ratings import count_battles
from collect.services.arena.state import Battle
from plumb.config import ConfigError
from tests.support.arena import arena_campaign

ABC = ["a", "b", "c"]


def named(weights: np.ndarray, names: str) -> dict[str, float]:
    """{"ab": weight, ...} over the pairs of `names` in `pair_indices` order."""
    pairs = [a + b for k, a in enumerate(names) for b in names[k + 1 :]]
    return dict(zip(pairs, weights.tolist(), strict=True))


def wins_of(battles: dict[str, tuple[float, float]], names: str) -> np.ndarray:
    """(n, n) wins from {"ab": (a's wins, b's wins)}."""
    wins = np.zeros((len(names), len(names)))
    for pair, (first, second) in battles.items():
        i, j = names.index(pair[0]), names.index(pair[1])
        wins[i, j], wins[j, i] = first, second
    return wins


def test_the_campaign_key_defaults_to_uniform_and_a_bad_value_names_the_key():
    assert campaign_from_dict({"name": "x"}).arena_pairing == "uniform"
    assert campaign_from_dict({"name": "x", "arena_pairing": "informative"}).arena_pairing == "informative"
    for bad in ("active", "", None, ["informative"]):
        with pytest.raises(ConfigError, match="key 'arena_pairing': expected one of uniform, informative"):
            campaign_from_dict({"name": "x", "arena_pairing": bad}, where="c.yaml")


@pytest.mark.parametrize(("won", "strength"), [(50, 0.0), (80, math.log(4) / 2)])
def test_a_lone_pair_gains_what_the_formula_says_by_hand(won, strength):
    # Two policies, 100 battles: strengths +-s (the ridge barely moves them), q = p(1 - p), Fisher information
    # 100 q on the pair, so Var(theta_a - theta_b) = 2 / (2 * 100 q + l2); one battle more divides it by 1 + qR.
    q = expit(2 * strength) * expit(-2 * strength)
    variance = 2 / (2 * 100 * q + RIDGE)
    expected = q * (math.sqrt(variance) - math.sqrt(variance / (1 + q * variance)))
    gain = informative_gains(wins_of({"ab": (won, 100 - won)}, "ab"))
    assert gain == pytest.approx([expected], rel=2e-3)


def test_at_equal_counts_a_close_pair_gains_more_than_a_lopsided_one():
    # Their win probabilities: 0.5 against 0.8. Alone, each gains about sqrt(q) / (2 n^1.5): 0.5 against 0.4.
    close = informative_gains(wins_of({"ab": (50, 50)}, "ab"))[0]
    lopsided = informative_gains(wins_of({"ab": (80, 20)}, "ab"))[0]
    assert close / lopsided == pytest.approx(math.sqrt(0.25 / 0.16), rel=0.02)


def test_the_pair_that_never_met_gets_the_highest_weight():
    # a beat b and c 85 times in 100 each: b and c are alike (their intervals overlap) and never met.
    weights = named(informative_weights(wins_of({"ab": (85, 15), "ac": (85, 15)}, "abc")), "abc")
    assert weights["bc"] > 0.7
    assert weights["ab"] == pytest.approx(weights["ac"])
    assert weights["ab"] < 0.15
    # A policy with no battle at all: both of its pairs come before the well-measured one.
    weights = named(informative_weights(wins_of({"ab": (85, 15)}, "abc")), "abc")
    assert min(weights["ac"], weights["bc"]) > 10 * weights["ab"]


def test_of_two_pairs_with_equal_counts_the_overlapping_one_outweighs_the_far_apart_one():
    # Strengths 0, 0, +1.5, -1.5 (log-odds); every pair met 40 times, with the wins it should have.
    strengths = np.array([0.0, 0.0, 1.5, -1.5])
    wins = 40 * expit(strengths[:, None] - strengths[None, :])
    np.fill_diagonal(wins, 0)
    weights = named(informative_weights(wins), "abcd")
    assert max(weights, key=weights.get) == "ab"  # equal strengths: the intervals overlap most
    assert min(weights, key=weights.get) == "cd"  # three log-odds apart: each battle tells little
    assert weights["ab"] > 2 * weights["cd"]


def test_every_pair_keeps_a_positive_weight_and_no_battles_means_uniform():
    assert informative_weights(np.zeros((4, 4))) == pytest.approx(uniform_weights(4))
    # One pair with thousands of battles, a policy that won every battle: no finite fit, yet finite weights.
    weights = informative_weights(wins_of({"ab": (3000, 3000), "ac": (0, 40), "bc": (0, 40)}, "abc"))
    assert weights.sum() == pytest.approx(1)
    assert (weights >= EXPLORATION / 3).all()
    assert len(informative_weights(np.zeros((1, 1)))) == 0
    with pytest.raises(ValueError, match="exploration"):
        informative_weights(np.zeros((3, 3)), exploration=0)


def test_pair_weights_read_count_battles_by_name_and_leave_out_policies_no_longer_in_the_campaign():
    rows = [("a", "b", "model_a")] * 85 + [("b", "a", "model_a")] * 15 + [("a", "c", "model_a")] * 85
    rows += [("c", "a", "model_a")] * 15 + [("b", "old", "tie")] * 500
    counts = count_battles(*zip(*rows, strict=True))
    weights = pair_weights(["c", "b", "a"], counts)  # the campaign's order, not the sorted one
    assert set(weights) == {("c", "b"), ("c", "a"), ("b", "a")}
    assert max(weights, key=weights.get) == ("c", "b")
    assert weights[("c", "a")] == pytest.approx(weights[("b", "a")])
    assert pair_weights(["c", "b", "a"], counts, pairing="uniform") == pytest.approx(dict.fromkeys(weights, 1 / 3))
    assert sum(pair_weights(["c", "b", "a"], None).values()) == pytest.approx(1)


def test_draw_pair_follows_the_weights_with_random_sides():
    rng = random.Random(0)
    drawn = Counter(draw_pair(ABC, np.array([0.1, 0.2, 0.7]), rng) for _ in range(6000))
    assert drawn[("b", "c")] + drawn[("c", "b")] == pytest.approx(4200, abs=150)
    assert drawn[("a", "b")] + drawn[("b", "a")] == pytest.approx(600, abs=80)
    assert drawn[("b", "c")] == pytest.approx(drawn[("c", "b")], abs=200)  # either side first, alike


def store_battles(sessions, spec, pairs: dict[tuple[str, str], int], *, start: int = 0) -> None:
    """Vote on `pairs[(a, b)]` battles of a against b, a winning two in three, through `cast_vote`."""
    policies = {policy.name: policy for policy in spec.policies}
    for (a, b), count in pairs.items():
        for k in range(count):
            battle = Battle(rater="ana", policies=(policies[a], policies[b]), min_seconds=0, max_new_tokens=8, turns=[])
            battle.add_turn(f"question {start + k}", now=0.0)
            for side in (0, 1):
                battle.add_text(side, "answer", now=1.0)
                battle.finish(side, now=1.0)
            battle.show()
            vote = "B is better" if k % 3 == 2 else "A is better"
            cast_vote(sessions, campaign=spec.name, battle=battle, rater_name="ana", vote=vote, now=2.0)


def pair_shares(spec, sessions, draws: int) -> dict[frozenset, float]:
    rng = random.Random(7)
    battles = [start_battle(spec, rater="ana", prompt="hi", rng=rng, sessions=sessions) for _ in range(draws)]
    pairs = Counter(frozenset(side.policy.name for side in battle.sides) for battle in battles)
    return {pair: count / draws for pair, count in pairs.items()}


def test_an_informative_campaign_picks_the_under_sampled_pair_and_a_uniform_one_stays_uniform(store):
    _, sessions = store
    spec = arena_campaign(sessions, policies=ABC, arena_pairing="informative", arena_min_seconds=0)
    store_battles(sessions, spec, {("a", "b"): 12, ("a", "c"): 12})
    shares = pair_shares(spec, sessions, 600)
    assert shares[frozenset("bc")] > 0.45  # uniform would give it a third (standard deviation 0.02 in 600 draws)
    # a won 8 of 12 against each: what the pure rule gives those counts is what the campaign draws.
    expected = named(informative_weights(wins_of({"ab": (8, 4), "ac": (8, 4)}, "abc")), "abc")
    assert {"".join(sorted(pair)): share for pair, share in shares.items()} == pytest.approx(expected, abs=0.05)
    assert min(shares[frozenset("ab")], shares[frozenset("ac")]) > 0.03  # exploration: never cut off

    uniform = campaign_from_dict({"name": "arena", "policies": ABC})
    shares = pair_shares(uniform, sessions, 600)
    assert all(abs(share - 1 / 3) < 0.06 for share in shares.values())
    with pytest.raises(ValueError, match="pass `sessions`"):
        start_battle(spec, rater="ana", prompt="hi")


def test_the_fit_is_cached_and_refreshed_after_refresh_seconds(store, monkeypatch):
    _, sessions = store
    spec = arena_campaign(sessions, policies=ABC, arena_pairing="informative", arena_min_seconds=0)
    reads = []
    import collect.services.arena.pairing_fits as pairing_fits

    real = pairing_fits.campaign_wins
    monkeypatch.setattr(pairing_fits, "campaign_wins", lambda *args: reads.append(args) or real(*args))
    clock = [0.0]
    fits = PairingFits(refresh_seconds=30, clock=lambda: clock[0])
    empty = fits.weights(sessions, "arena", tuple(ABC))
    assert empty == pytest.approx(uniform_weights(3))  # no battles yet: nothing to prefer

    store_battles(sessions, spec, {("a", "b"): 9})
    clock[0] = 29.0
    assert fits.weights(sessions, "arena", tuple(ABC)) is empty  # a battle start within the refresh reads nothing
    assert len(reads) == 1
    clock[0] = 30.0
    refreshed = named(fits.weights(sessions, "arena", tuple(ABC)), "abc")
    assert len(reads) == 2
    assert refreshed["ab"] < min(refreshed["ac"], refreshed["bc"])
    fits.weights(sessions, "arena", ("a", "b"))  # the campaign's policies changed: fit again at once
    assert len(reads) == 3
