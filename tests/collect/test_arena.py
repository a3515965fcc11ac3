"""Bradley-Terry leaderboard: counting by hand, a two-policy closed form, scikit-learn as an independent fit,
and the property that policies of known, well-separated strength come out in the right order."""

import math

import numpy as np
import pytest

from collect.services.arena.ratings import (
    bootstrap_counts,
    bradley_terry,
    count_battles,
    leaderboard,
    leaderboard_json,
    leaderboard_table,
    to_elo,
    win_matrix,
)
from plumb.data import DataError


def battles(*rows):
    """(model_a, model_b, winner) lists from row tuples."""
    return [list(column) for column in zip(*rows)]


def simulate(ratings: dict, n: int, *, seed: int = 0, tie_rate: float = 0.1):
    """n battles between random pairs of policies whose true Elo `ratings` decide the odds.

    Ties take an equal share from both sides' chances, so a's expected score (ties half) stays
    P(a beats b) of the ratings and a tie-as-half-a-win fit is consistent.
    """
    rng = np.random.default_rng(seed)
    names = np.array(list(ratings))
    strength = np.array(list(ratings.values()), dtype=float)
    a = rng.integers(0, len(names), n)
    b = (a + rng.integers(1, len(names), n)) % len(names)
    p_a = 1 / (1 + 10 ** ((strength[b] - strength[a]) / 400))
    p_tie = 2 * tie_rate * np.minimum(p_a, 1 - p_a)
    u = rng.random(n)
    winner = np.where(u < p_a - p_tie / 2, "model_a", np.where(u < p_a + p_tie / 2, "tie", "model_b"))
    return names[a].tolist(), names[b].tolist(), winner.tolist()


def test_counting_by_hand():
    # A-B: A won once, one tie, and (as model_a) B won once: A has 1 + 0.5, B has 0.5 + 1.
    # C-A "both bad" is a tie by default: half a win each.
    rows = battles(("A", "B", "model_a"), ("A", "B", "tie"), ("B", "A", "model_a"), ("C", "A", "both_bad"))
    counts = count_battles(*rows)
    assert counts.policies.tolist() == ["A", "B", "C"] and counts.battles == 4
    np.testing.assert_array_equal(win_matrix(counts.cells, counts.counts, 3), [[0, 1.5, 0.5], [1.5, 0, 0], [0.5, 0, 0]])
    dropped = count_battles(*rows, both_bad="drop")
    assert dropped.policies.tolist() == ["A", "B"] and dropped.dropped == 1 and dropped.battles == 3


def test_two_policies_closed_form():
    # A wins 3 of 4: sigma(theta_A - theta_B) = 3/4 -> difference ln 3; on the Elo scale 400 log10(3) = 190.85,
    # split around the anchor 1000.
    strengths, converged = bradley_terry(np.array([[0.0, 3.0], [1.0, 0.0]]))
    assert converged
    assert strengths[0] - strengths[1] == pytest.approx(math.log(3))
    np.testing.assert_allclose(to_elo(strengths), [1000 + 200 * math.log10(3), 1000 - 200 * math.log10(3)])


def test_fit_matches_a_per_battle_logistic_regression():
    # Independent computation: one row per battle, +1/-1 for the two policies, a tie as one win for each
    # side of a duplicated battle (how public arena notebooks fit it), no penalty.
    from sklearn.linear_model import LogisticRegression

    model_a, model_b, winner = simulate({"p0": 900, "p1": 1000, "p2": 1050, "p3": 1200}, 800, seed=1)
    counts = count_battles(model_a, model_b, winner)
    ours = to_elo(bradley_terry(win_matrix(counts.cells, counts.counts, 4))[0])
    index = {name: i for i, name in enumerate(counts.policies)}
    rows = np.zeros((1600, 4))
    rows[np.arange(1600), [index[m] for m in model_a * 2]] = math.log(10)
    rows[np.arange(1600), [index[m] for m in model_b * 2]] = -math.log(10)
    won = np.array([w == "model_a" for w in winner] + [w in ("model_a", "tie") for w in winner], dtype=float)
    fitted = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-10, max_iter=1000).fit(rows, won)
    np.testing.assert_allclose(ours, 1000 + 400 * fitted.coef_[0], atol=0.01)


def test_batched_fits_equal_single_fits():
    counts = count_battles(*simulate({"a": 950, "b": 1000, "c": 1100}, 300))
    resampled = bootstrap_counts(counts, rounds=4, rng=np.random.default_rng(3))
    batched, converged = bradley_terry(win_matrix(counts.cells, resampled, 3))
    assert converged.all()
    for r in range(4):
        np.testing.assert_allclose(batched[r], bradley_terry(win_matrix(counts.cells, resampled[r], 3))[0], atol=1e-9)


def test_bootstrap_resamples_every_battle_once_per_round():
    counts = count_battles(*simulate({"a": 950, "b": 1000, "c": 1100}, 500))
    resampled = bootstrap_counts(counts, rounds=2000, rng=np.random.default_rng(0))
    assert (resampled.sum(axis=1) == counts.battles).all()
    np.testing.assert_allclose(resampled.mean(axis=0), counts.counts, rtol=0.1)


def test_leaderboard_ranks_well_separated_policies_in_order():
    truth = {"weak": 800, "fair": 900, "good": 1000, "strong": 1100, "best": 1200}
    board = leaderboard(count_battles(*simulate(truth, 4000, seed=2)), rounds=200, seed=1)
    assert board.policies == ["best", "strong", "good", "fair", "weak"]
    assert board.ratings.mean() == pytest.approx(1000.0)
    true = np.array([truth[p] for p in board.policies], dtype=float)
    np.testing.assert_allclose(board.ratings, true, atol=30)
    assert ((board.ci_low < true) & (true < board.ci_high)).sum() >= 3  # 95% intervals mostly cover the truth
    assert (board.ci_low < board.ratings).all() and (board.ratings < board.ci_high).all()


def test_win_rate_and_battle_count_matrices():
    rows = battles(("A", "B", "model_a"), ("A", "B", "model_a"), ("B", "A", "tie"), ("B", "A", "model_a"))
    board = leaderboard(count_battles(*rows), rounds=0)
    # A won 2 + 0.5 of 4 battles against B.
    assert board.policies == ["A", "B"] and board.games.tolist() == [[0, 4], [4, 0]]
    np.testing.assert_allclose(board.win_rates, [[np.nan, 2.5 / 4], [1.5 / 4, np.nan]])
    result = leaderboard_json(board)
    assert result["win_rate"] == {"A": {"B": 0.625}, "B": {"A": 0.375}}
    assert result["battle_count"] == {"A": {"B": 4}, "B": {"A": 4}}
    assert result["ratings"][0]["ci_low"] is None  # no bootstrap asked for
    table = leaderboard_table(board).splitlines()
    assert table[1].split()[:3] == ["1", "A", f"{1000 + 200 * math.log10(2.5 / 1.5):.1f}"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ((("A", "B", "model_a"), ("A", "B", "draw")), "row 1: field 'winner': 'draw'"),
        ((("A", "B", "model_a"), ("C", "C", "tie")), "row 1: fields 'model_a' and 'model_b' name the same policy"),
        ((("A", "B", "model_a"), ("A", None, "tie")), "row 1: field 'model_b': expected a non-empty name"),
    ],
)
def test_bad_battle_names_row_and_field(rows, message):
    with pytest.raises(DataError, match=f"^arena.csv: {message}"):
        count_battles(*battles(*rows), source="arena.csv")


def test_nothing_to_rate_is_an_error():
    with pytest.raises(DataError, match="no battles to rate .1 rows, 1 'both bad' dropped"):
        count_battles(["A"], ["B"], ["both_bad"], both_bad="drop")
    with pytest.raises(DataError, match="no battles to rate"):
        count_battles([], [], [])


def test_groups_that_never_met_are_an_error():
    rows = battles(("A", "B", "model_a"), ("B", "A", "model_a"), ("C", "D", "tie"))
    with pytest.raises(DataError, match="2 groups .*A, B; C, D"):
        leaderboard(count_battles(*rows), rounds=0)


def test_unbeaten_policy_needs_l2():
    rows = battles(("A", "B", "model_a"), ("A", "B", "model_a"), ("B", "C", "model_a"), ("C", "B", "model_a"))
    with pytest.raises(DataError, match="no finite maximum.*l2"):
        leaderboard(count_battles(*rows), rounds=0)
    board = leaderboard(count_battles(*rows), rounds=0, l2=0.1)
    assert board.policies[0] == "A" and np.isfinite(board.ratings).all()
