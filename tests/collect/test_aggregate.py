"""Aggregation: majority vote and Dawid-Skene by hand, Dawid-Skene beating the vote when one rater is reliable."""

import numpy as np
import pytest

from collect.domain.quality.aggregate import (
    contested_items,
    dawid_skene,
    estimate_confusions,
    item_posteriors,
    majority_vote,
    model_agreement,
    reliability_weights,
)

NAN = np.nan
LABELS = np.array([[1, 1, 2], [1, 2, NAN], [0, 0, 0]])


def test_majority_vote_by_hand():
    # Item 0: 1 has 2 votes of 3; item 1: 1 vs 2, a split -> undecided; item 2: all say 0.
    consensus, support = majority_vote(LABELS)
    np.testing.assert_array_equal(consensus, [1, NAN, 0])
    np.testing.assert_allclose(support, [2 / 3, 1 / 2, 1])


def test_weighted_majority_by_hand():
    # Weights 1, 2, 1. Item 0: label 1 gets 1 + 2 = 3 of 4; item 1: label 2 gets 2 of 3 and wins the split.
    consensus, support = majority_vote(LABELS, np.array([1.0, 2.0, 1.0]))
    np.testing.assert_array_equal(consensus, [1, 2, 0])
    np.testing.assert_allclose(support, [3 / 4, 2 / 3, 1])


def test_reliability_weights_down_weight_flagged_raters():
    rows = [{"rater": "a", "flags": []}, {"rater": "b", "flags": ["gold"]}]
    assert reliability_weights(rows, flagged_weight=0.1).tolist() == [1.0, 0.1]


def test_contested_items():
    consensus, support = majority_vote(LABELS)
    assert contested_items(consensus, support, min_agreement=0.7).tolist() == [True, True, False]
    assert contested_items(consensus, support, min_agreement=0.6).tolist() == [False, True, False]


def test_m_step_by_hand():
    # One rater, two items, two categories. Item 0: truth surely 0, rater said 0.
    # Item 1: truth 50/50, rater said 1. Counts for truth 0: said-0 1, said-1 0.5 -> [2/3, 1/3];
    # truth 1: said-1 0.5 -> [0, 1]. Priors: mean posterior [0.75, 0.25].
    observed = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # (items, raters, k)
    posteriors = np.array([[1.0, 0.0], [0.5, 0.5]])
    priors, confusions = estimate_confusions(observed, posteriors, smoothing=0.0)
    np.testing.assert_allclose(priors, [0.75, 0.25])
    np.testing.assert_allclose(confusions[0], [[2 / 3, 1 / 3], [0, 1]])


def test_e_step_by_hand():
    # Prior 1/2 each; the rater says 0 with P 0.9 when the truth is 0 and 0.2 when it is 1.
    # Posterior of truth 0 after "0": 0.45 / (0.45 + 0.1) = 9/11. Two such raters: 0.405 / (0.405 + 0.02) = 81/85.
    confusion = np.array([[0.9, 0.1], [0.2, 0.8]])
    one = item_posteriors(np.array([[[1.0, 0.0]]]), np.array([0.5, 0.5]), confusion[None])
    np.testing.assert_allclose(one, [[9 / 11, 2 / 11]])
    two = item_posteriors(np.array([[[1.0, 0.0], [1.0, 0.0]]]), np.array([0.5, 0.5]), np.stack([confusion] * 2))
    np.testing.assert_allclose(two, [[81 / 85, 4 / 85]])


def test_dawid_skene_trusts_the_reliable_rater():
    # Rater 0 is right 95% of the time, raters 1 and 2 only 60%. The vote errs when both weak raters
    # err together: P(vote right) = 0.95 * (1 - 0.4^2) + 0.05 * 0.6^2 = 0.816. Dawid-Skene learns
    # the confusions and follows rater 0, close to 0.95.
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, size=600)
    accuracy = np.array([0.95, 0.6, 0.6])
    right = rng.random((600, 3)) < accuracy
    labels = np.where(right, truth[:, None], 1 - truth[:, None]).astype(float)
    vote, _ = majority_vote(labels)
    fitted = dawid_skene(labels)
    vote_accuracy, ds_accuracy = (vote == truth).mean(), (fitted["consensus"] == truth).mean()
    assert vote_accuracy == pytest.approx(0.816, abs=0.04)
    assert ds_accuracy > vote_accuracy + 0.08
    learned = np.diagonal(fitted["confusions"], axis1=1, axis2=2).mean(axis=1)  # mean P(correct) per rater
    np.testing.assert_allclose(learned, accuracy, atol=0.05)


def test_dawid_skene_agrees_with_a_unanimous_vote():
    labels = np.array([[0, 0, 0], [1, 1, NAN], [2, 2, 2], [1, NAN, 1.0]])
    fitted = dawid_skene(labels)
    np.testing.assert_array_equal(fitted["consensus"], [0, 1, 2, 1])
    assert (fitted["support"] > 0.9).all()


def test_model_agreement_by_hand():
    # Both defined on items 0, 1, 2, 4: same on 0, 2, 4 -> 3/4. Without ties (item 2): 0, 1, 4 -> 2/3.
    # Kappa: model [1, 1, 0, -1], humans [1, -1, 0, -1]: p_o = 3/4, p_e = 2/16 + 1/16 + 2/16 = 5/16 -> 7/11.
    model = np.array([1, 1, 0, NAN, -1])
    consensus = np.array([1, -1, 0, 1, -1])
    result = model_agreement(model, consensus)
    assert result["items"] == 4 and result["items_no_ties"] == 3
    assert result["agreement"] == pytest.approx(3 / 4) and result["agreement_no_ties"] == pytest.approx(2 / 3)
    assert result["kappa"] == pytest.approx(7 / 11)
