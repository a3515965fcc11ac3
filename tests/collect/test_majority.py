"""Aggregation rules, checked against decisions worked out by hand."""

from collect.services.export.majority import (
    aggregate_pairwise,
    aggregate_ranks,
    aggregate_ratings,
    agreement,
    dense_ranks,
)


def test_majority_wins_and_the_margin_is_the_winners_mean_strength():
    # Votes +3, +1, -2: two say "first better" (strengths 3 and 1), so margin (3 + 1) / 2 = 2.
    outcome = aggregate_pairwise([(3, False), (1, False), (-2, False)])
    assert outcome.ranks == [1, 2] and outcome.margin == 2.0
    assert aggregate_pairwise([(-1, False)]).ranks == [2, 1]


def test_ties_and_both_bad_are_decisions_of_their_own():
    assert aggregate_pairwise([(0, False), (0, False), (2, False)]).ranks == [1, 1]
    both_bad = aggregate_pairwise([(None, True), (None, True), (1, False)])
    assert both_bad.ranks is None and both_bad.both_bad and both_bad.reason == "both bad"


def test_a_split_vote_is_dropped_or_settled_by_summed_strength():
    votes = [(3, False), (-1, False)]  # one each way; the sum +2 favours the first candidate
    assert aggregate_pairwise(votes).reason == "split vote"
    settled = aggregate_pairwise(votes, on_split="strength")
    assert settled.ranks == [1, 2] and settled.margin == 3.0
    assert aggregate_pairwise([(2, False), (-2, False)], on_split="strength").reason == "split vote"


def test_rankings_and_ratings_aggregate_by_mean_with_shared_ranks():
    # Means: candidate 0 (1+2)/2 = 1.5, candidate 1 (2+1)/2 = 1.5, candidate 2 (3+3)/2 = 3.
    assert aggregate_ranks([[1, 2, 3], [2, 1, 3]]).ranks == [1, 1, 2]
    # Mean ratings 4.5, 2, 4.5: the two best share rank 1.
    assert aggregate_ratings([[5, 2, 4], [4, 2, 5]]).ranks == [1, 2, 1]
    assert dense_ranks([0.5, 0.1, 0.5, 0.9]) == [2, 1, 2, 3]


def test_agreement_is_the_share_of_the_most_common_vote():
    assert agreement([1, 1, -1, 1]) == 0.75
    assert agreement(["both_bad"]) == 1.0 and agreement([]) == 0.0
