"""Agreement coefficients on a 4-item, 3-rater matrix whose every figure is worked out by hand below."""

from itertools import combinations

import numpy as np
import pytest

from collect.domain.quality.agreement import (
    agreement_summary,
    cohen_kappa_pairs,
    fleiss_kappa,
    krippendorff_alpha,
    pair_counts,
    raw_agreement,
    raw_agreement_no_ties,
)

NAN = np.nan
# PandaLM's coding: 0 tie, 1 first response better, 2 second better. Rater r3 skipped item 3.
LABELS = np.array(
    [
        [1, 1, 1],
        [1, 2, 1],
        [0, 0, 2],
        [2, 2, NAN],
    ]
)
RATERS = ["r1", "r2", "r3"]


def test_raw_agreement_by_hand():
    # r1-r2 share items 0..3 and agree on 0, 2, 3: 3/4; r1-r3 share 0..2, agree on 0, 1: 2/3;
    # r2-r3 share 0..2, agree on 0 only: 1/3. Mean over the pairs: (3/4 + 2/3 + 1/3) / 3 = 7/12.
    assert raw_agreement(LABELS) == pytest.approx(7 / 12)


def test_raw_agreement_without_ties_by_hand():
    # Per pair only items where neither said 0. r1-r2: items 0, 1, 3, agree on 0, 3: 2/3;
    # r1-r3: items 0, 1 (r1 said tie on 2): 2/2; r2-r3: items 0, 1: 1/2. Mean: (2/3 + 1 + 1/2) / 3 = 13/18.
    assert raw_agreement_no_ties(LABELS, tie=0) == pytest.approx(13 / 18)


def test_pair_counts_match_a_plain_loop():
    shared, agreed = pair_counts(LABELS)
    for a, b in combinations(range(3), 2):
        both = [i for i in range(4) if not np.isnan(LABELS[i, a]) and not np.isnan(LABELS[i, b])]
        assert shared[a, b] == len(both)
        assert agreed[a, b] == sum(LABELS[i, a] == LABELS[i, b] for i in both)


def test_raw_agreement_needs_a_shared_item():
    assert raw_agreement(np.array([[1, NAN], [NAN, 2]])) is None


def test_cohen_kappa_by_hand():
    # Only r1-r2 share 4 items. r1 = [1, 1, 0, 2], r2 = [1, 2, 0, 2]: observed agreement 3/4.
    # Marginals r1 {1: 2/4, 0: 1/4, 2: 1/4}, r2 {1: 1/4, 0: 1/4, 2: 2/4}:
    # chance = 2/16 + 1/16 + 2/16 = 5/16; kappa = (3/4 - 5/16) / (1 - 5/16) = 7/11.
    rows = cohen_kappa_pairs(LABELS, RATERS, min_shared=4)
    assert [(row["rater_a"], row["rater_b"], row["shared"]) for row in rows] == [("r1", "r2", 4)]
    assert rows[0]["kappa"] == pytest.approx(7 / 11)


def test_cohen_kappa_is_none_when_both_raters_use_one_label():
    rows = cohen_kappa_pairs(np.array([[1.0, 1.0]] * 3), ["a", "b"], min_shared=3)
    assert rows[0]["kappa"] is None


def test_fleiss_kappa_by_hand():
    # Items 0..2 have 3 ratings (the common count); item 3 has 2 and is left out.
    # Counts per category (0, 1, 2): [0, 3, 0], [0, 2, 1], [2, 0, 1].
    # P_i = (sum n_ij^2 - 3) / 6: 1, 1/3, 1/3 -> mean 5/9. Category shares 2/9, 5/9, 2/9 -> P_e = 33/81.
    # kappa = (5/9 - 33/81) / (1 - 33/81) = (12/81) / (48/81) = 1/4.
    result = fleiss_kappa(LABELS)
    assert result == {"kappa": pytest.approx(0.25), "items": 3, "raters_per_item": 3}


def test_krippendorff_nominal_by_hand():
    # Coincidences (each ordered pair within an item weighted 1 / (m_u - 1)):
    # item 0 {1,1,1}: o11 += 3; item 1 {1,2,1}: o11 += 1, o12 += 1, o21 += 1;
    # item 2 {0,0,2}: o00 += 1, o02 += 1, o20 += 1; item 3 {2,2}: o22 += 2.
    # n_0 = 2, n_1 = 5, n_2 = 4, n = 11; off-diagonal o = 4.
    # alpha = 1 - (n - 1) * 4 / (n^2 - sum n_c^2) = 1 - 10 * 4 / (121 - 45) = 9/19.
    assert krippendorff_alpha(LABELS, level="nominal") == pytest.approx(9 / 19)


def test_krippendorff_ordinal_by_hand():
    # Same coincidences, ordinal distance d(c, k) = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2:
    # d01 = 3.5^2 = 12.25, d12 = 4.5^2 = 20.25, d02 = (11 - 3)^2 = 64.
    # Observed: 2 * (o02 d02 + o12 d12) = 2 * (64 + 20.25) = 168.5.
    # Expected: 2 * (n0 n1 d01 + n1 n2 d12 + n0 n2 d02) = 2 * (122.5 + 405 + 512) = 2079.
    # alpha = 1 - (n - 1) * 168.5 / 2079 = 394/2079.
    assert krippendorff_alpha(LABELS, level="ordinal") == pytest.approx(394 / 2079)


def test_krippendorff_ordinal_equals_nominal_with_two_categories():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(30, 4)).astype(float)
    labels[rng.random(labels.shape) < 0.2] = NAN
    nominal = krippendorff_alpha(labels, level="nominal")
    assert krippendorff_alpha(labels, level="ordinal") == pytest.approx(nominal)


def test_perfect_agreement_gives_one_everywhere():
    labels = np.array([[1, 1], [2, 2], [0, 0], [2, 2.0]])
    summary = agreement_summary(labels, labels, ["a", "b"], min_shared=2)
    assert summary["raw_agreement"] == summary["raw_agreement_no_ties"] == 1.0
    assert summary["fleiss_kappa"] == pytest.approx(1.0)
    assert summary["krippendorff_alpha_nominal"] == pytest.approx(1.0)
    assert summary["cohen_kappa_pairs"][0]["kappa"] == pytest.approx(1.0)


def test_alpha_is_undefined_with_a_single_label():
    assert krippendorff_alpha(np.array([[1.0, 1.0], [1.0, NAN]])) is None


def test_a_single_rater_gives_no_agreement_figures():
    labels = np.array([[1.0, NAN], [NAN, 2.0], [0.0, NAN]])  # two raters who never judged the same item
    summary = agreement_summary(labels, labels, ["a", "b"], min_shared=1)
    assert summary["raw_agreement"] is None and summary["fleiss_kappa"] is None
    assert summary["krippendorff_alpha_nominal"] is None and summary["cohen_kappa_pairs"] == []
