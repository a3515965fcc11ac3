"""The reward metrics against numbers worked out by hand (or by scipy, an independent implementation)."""

import math

import numpy as np
import pytest
from scipy import stats

from reward import metrics as m


def test_pair_correct_counts_ties_half():
    assert m.pair_correct([2.0, 1.0, 0.5], [1.0, 3.0, 0.5]).tolist() == [1.0, 0.0, 0.5]


def test_preference_probability_is_the_sigmoid_of_the_margin():
    # sigmoid(0) = 0.5; sigmoid(ln 3) = 3 / (1 + 3) = 0.75
    assert m.preference_probability([0.0, math.log(3)], [0.0, 0.0]) == pytest.approx([0.5, 0.75])


def test_ece_by_hand():
    # p = 0.9, 0.9, 0.2, 0.6 -> confidence 0.9, 0.9, 0.8, 0.6; correct 1, 1, 0, 1.
    # 5 bins of width 0.1 over [0.5, 1]: [0.6,0.7) holds 0.6 (acc 1, conf 0.6): |1 - 0.6| = 0.4, weight 1/4;
    # [0.8,0.9) holds 0.8 (acc 0, conf 0.8): 0.8, weight 1/4; [0.9,1] holds 0.9, 0.9 (acc 1): 0.1, weight 2/4.
    # ECE = 0.4/4 + 0.8/4 + 0.1*2/4 = 0.1 + 0.2 + 0.05 = 0.35
    assert m.expected_calibration_error([0.9, 0.9, 0.2, 0.6], num_bins=5) == pytest.approx(0.35)
    bins = m.reliability_bins([0.9, 0.9, 0.2, 0.6], num_bins=5)
    assert [b["count"] for b in bins] == [0, 1, 0, 1, 2]
    assert bins[3]["accuracy"] == 0.0 and bins[3]["confidence"] == pytest.approx(0.8)


def test_bins_cover_the_confidences_from_one_half_to_one():
    bins = m.reliability_bins([0.5, 0.55, 1.0, 0.0], num_bins=5)
    assert [b["low"] for b in bins] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    assert [b["high"] for b in bins] == pytest.approx([0.6, 0.7, 0.8, 0.9, 1.0])
    # 0.5 and 0.55 in the first bin (a tie is half right, 0.55 picks chosen: right); 1.0 and 0.0 (confidence 1,
    # right and wrong) in the last, closed bin
    assert [b["count"] for b in bins] == [2, 0, 0, 0, 2]
    assert bins[0]["accuracy"] == pytest.approx(0.75) and bins[0]["confidence"] == pytest.approx(0.525)
    assert bins[4]["accuracy"] == 0.5 and bins[4]["confidence"] == 1.0
    assert bins[1]["accuracy"] is None and bins[1]["confidence"] is None
    assert math.isnan(m.expected_calibration_error([], num_bins=5))


def test_perfectly_calibrated_bins_have_zero_ece():
    # confidence 0.75 in every pair, right 3 times out of 4
    assert m.expected_calibration_error([0.75, 0.75, 0.75, 0.25], num_bins=10) == pytest.approx(0.0)


def test_longer_is_better_baseline():
    # longer chosen, shorter chosen, tie, longer chosen -> 1, 0, 0.5, 1
    assert m.longer_is_better_accuracy([10, 3, 5, 7], [4, 8, 5, 2]) == pytest.approx(2.5 / 4)


def test_bootstrap_interval_brackets_the_mean_and_matches_scipy():
    assert m.bootstrap_ci([1.0] * 20) == (1.0, 1.0)
    values = np.array([1.0] * 70 + [0.0] * 30)
    low, high = m.bootstrap_ci(values, samples=4000, seed=1)
    reference = stats.bootstrap((values,), np.mean, n_resamples=4000, method="percentile", random_state=1)
    assert low < 0.7 < high
    assert low == pytest.approx(reference.confidence_interval.low, abs=0.02)
    assert high == pytest.approx(reference.confidence_interval.high, abs=0.02)


def test_bootstrap_interval_narrows_with_lower_confidence():
    values = np.array([1.0] * 60 + [0.0] * 40)
    low, high = m.bootstrap_ci(values, samples=4000, confidence=0.5, seed=2)
    reference = stats.bootstrap(
        (values,), np.mean, n_resamples=4000, confidence_level=0.5, method="percentile", random_state=2
    )
    # the standard error of a mean of 100 values at 0.6 is sqrt(0.6 * 0.4 / 100) = 0.049; a 50% interval
    # is about +-0.674 of it: 0.567 to 0.633
    assert low == pytest.approx(0.567, abs=0.015) and high == pytest.approx(0.633, abs=0.015)
    assert low == pytest.approx(reference.confidence_interval.low, abs=0.015)
    assert high == pytest.approx(reference.confidence_interval.high, abs=0.015)
    assert all(math.isnan(bound) for bound in m.bootstrap_ci([]))


def test_pearson_by_hand():
    # deviations (-1, 0, 1) and (-7/3, -1/3, 8/3): covariance sum 5, squares 2 and 114/9 -> 5 / sqrt(228 / 9)
    assert m.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(5 / math.sqrt(228 / 9))
    assert m.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(np.corrcoef([1, 2, 3], [2, 4, 7])[0, 1])
    assert m.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_ranks_and_spearman():
    assert m.average_ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    # ranks (1,2,3) vs (1,3,2): Pearson of the ranks = (1*-1... ) -> 1 - 6*2/(3*8) = 0.5
    assert m.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    x, y = [3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]
    assert m.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert math.isnan(m.pearson([1, 1, 1], [1, 2, 3]))


def test_agreement_levels_and_grouped_accuracy():
    assert [m.agreement_level(a) for a in (0.5, 2 / 3, 0.8, 1.0)] == ["<0.6", "0.6-0.8", "0.8-<1", "1 (unanimous)"]
    with pytest.raises(ValueError):
        m.agreement_level(1.5)
    table = m.grouped_accuracy([1, 0, 1, 1], ["b", "a", "b", "a"])
    assert table == {"a": {"pairs": 2, "accuracy": 0.5}, "b": {"pairs": 2, "accuracy": 1.0}}
