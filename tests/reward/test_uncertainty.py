"""Pre-labels, doubt and serving priorities against values worked out by hand on tiny arrays."""

import math
import subprocess
import sys

import numpy as np
import pytest

from reward import uncertainty as u


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_pair_margins_are_first_minus_second_as_models_by_pairs():
    assert u.pair_margins(np.array([3.0, 1.0]), np.array([1.0, 2.0])).tolist() == [[2.0, -1.0]]
    ensemble = u.pair_margins(np.array([[1.0, 0.0], [2.0, 5.0]]), np.array([[0.0, 1.0], [0.0, 1.0]]))
    assert ensemble.tolist() == [[1.0, -1.0], [2.0, 4.0]]
    with pytest.raises(ValueError, match="shape"):
        u.pair_margins(np.zeros(3), np.zeros(2))


def test_prelabel_by_hand():
    # margins 2, -2, 0.1: first, second, first preferred; confidence sigmoid(|m|)
    first, confidence = u.prelabel(np.array([[2.0, -2.0, 0.1]]))
    assert first.tolist() == [True, False, True]
    assert confidence == pytest.approx([sig(2), sig(2), sig(0.1)])


def test_prelabel_of_an_ensemble_uses_the_mean_margin():
    # means over 2 models: (1 + 3)/2 = 2, (-1 + 0)/2 = -0.5, (1 - 1)/2 = 0 (no side: confidence one half)
    first, confidence = u.prelabel(np.array([[1.0, -1.0, 1.0], [3.0, 0.0, -1.0]]))
    assert first.tolist() == [True, False, False]
    assert confidence == pytest.approx([sig(2), sig(0.5), 0.5])
    assert np.all((confidence >= 0.5) & (confidence <= 1.0))


def test_prelabel_stays_finite_for_huge_margins():
    _, confidence = u.prelabel(np.array([1e4, -1e4]))
    assert confidence.tolist() == [1.0, 1.0]


def test_doubt_of_one_model_is_one_minus_confidence():
    # 1 - sigmoid(2) = sigmoid(-2); a margin of 0 is a coin flip: 0.5
    assert u.doubt(np.array([2.0, -2.0, 0.0, 0.1])) == pytest.approx([sig(-2), sig(-2), 0.5, sig(-0.1)])
    assert u.doubt(np.array([[2.0, 0.5]])) == pytest.approx([sig(-2), sig(-0.5)])


def test_doubt_of_an_ensemble_by_hand():
    # margins 1 and 3: mean 2, std (ddof=1) sqrt(((1-2)^2 + (3-2)^2) / 1) = sqrt(2); doubt 1 - sigmoid(2 - sqrt 2)
    assert u.doubt(np.array([[1.0], [3.0]])) == pytest.approx([sig(math.sqrt(2) - 2)])


def test_an_ensemble_that_disagrees_doubts_more_than_one_that_agrees():
    # both pairs have mean margin 2; the first ensemble agrees (2, 2), the second splits (-1, 5)
    agree_or_not = u.doubt(np.array([[2.0, -1.0], [2.0, 5.0]]))
    assert agree_or_not[0] == pytest.approx(sig(-2))
    assert agree_or_not[1] > 0.5 > agree_or_not[0]  # the models disagree on the side


def test_doubt_falls_with_the_margin_and_rises_with_the_spread():
    means = np.array([0.0, 0.5, 1.0, 2.0, 4.0])
    assert np.all(np.diff(u.doubt(np.stack([means - 1, means + 1]))) < 0)  # same spread, growing |mean|
    assert np.all(np.diff(u.doubt(-means)) < 0)  # the side does not matter, only |mean|
    spreads = np.array([0.0, 0.5, 1.0, 2.0])
    assert np.all(np.diff(u.doubt(np.stack([3 - spreads, 3 + spreads]))) > 0)  # same mean, growing spread


def test_ranking_doubt_is_the_doubt_of_the_closest_pair():
    # scores 3, 0, 2.5: the closest pair is (3, 2.5), gap 0.5
    assert u.ranking_doubt(np.array([3.0, 0.0, 2.5])) == pytest.approx(sig(-0.5))
    # order does not matter, and a clear ranking doubts less than one with a near tie
    assert u.ranking_doubt(np.array([2.5, 3.0, 0.0])) == pytest.approx(sig(-0.5))
    assert u.ranking_doubt(np.array([4.0, 2.0, 0.0])) < u.ranking_doubt(np.array([4.0, 2.0, 1.9]))
    assert u.ranking_doubt(np.array([1.0])) == 0.0


def test_ranking_doubt_of_an_ensemble_and_of_many_tasks():
    # two models on 2 candidates: margins 1 - 0 = 1 and 3 - 0 = 3 -> as in the ensemble test above
    assert u.ranking_doubt(np.array([[1.0, 0.0], [3.0, 0.0]])) == pytest.approx(sig(math.sqrt(2) - 2))
    doubts = u.ranking_doubts([np.array([0.0, 2.0]), np.array([1.0, 0.0, 5.0])])
    assert doubts == pytest.approx([sig(-2), sig(-1)])


def test_priorities_without_embeddings_follow_doubt():
    # doubts 0.1, 0.4, 0.3, 0.4: served 1 then 3 (ties keep input order), 2, 0 -> priorities 4, 3, 2, 1
    doubts = np.array([0.1, 0.4, 0.3, 0.4])
    expected = [1.0, 4.0, 2.0, 3.0]
    assert u.diverse_priorities(doubts, None, clusters=3).tolist() == expected
    assert u.diverse_priorities(doubts, np.eye(4), clusters=1).tolist() == expected


def served(priorities: np.ndarray) -> list[int]:
    return np.argsort(-priorities, kind="stable").tolist()


def test_diverse_priorities_alternate_two_clear_clusters():
    # cluster A (near 0): items 0, 1, 2; cluster B (near 10): items 3, 4, 5. A holds the 3 most doubtful items, so
    # doubt alone serves 0, 1, 2, then B; the diverse queue takes each cluster's best in turn:
    # round 0: 0 (0.9) then 3 (0.3); round 1: 1 (0.8) then 4 (0.2); round 2: 2 (0.7) then 5 (0.1)
    doubts = np.array([0.9, 0.8, 0.7, 0.3, 0.2, 0.1])
    embeddings = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [10.0, 10.0], [10.1, 10.0], [10.0, 10.1]])
    assert served(u.diverse_priorities(doubts, None, clusters=2)) == [0, 1, 2, 3, 4, 5]
    assert served(u.diverse_priorities(doubts, embeddings, clusters=2)) == [0, 3, 1, 4, 2, 5]


def test_diverse_priorities_put_the_more_doubtful_cluster_head_first_each_round():
    # cluster A: 0 (0.2), 1 (0.1); cluster B: 2 (0.9), 3 (0.5), 4 (0.4); unequal clusters: B's tail goes last
    doubts = np.array([0.2, 0.1, 0.9, 0.5, 0.4])
    embeddings = np.array([[0.0], [0.1], [10.0], [10.1], [9.9]])
    priorities = u.diverse_priorities(doubts, embeddings, clusters=2, seed=3)
    assert served(priorities) == [2, 0, 3, 1, 4]
    assert sorted(priorities.tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.filterwarnings("error")  # KMeans warns when asked for more clusters than distinct points
def test_diverse_priorities_with_duplicate_embeddings_use_fewer_clusters():
    # two distinct points for 3 requested clusters: two clusters, alternating, and no warning
    doubts = np.array([0.9, 0.8, 0.1, 0.2])
    embeddings = np.array([[0.0], [0.0], [5.0], [5.0]])
    assert served(u.diverse_priorities(doubts, embeddings, clusters=3)) == [0, 3, 1, 2]


def test_importing_it_loads_neither_torch_nor_scikit_learn():
    # `plumb collect score` and the store's scheduling import it; KMeans is loaded only when clusters are asked for
    code = "import sys, reward.uncertainty; print([m for m in ('torch', 'sklearn') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"
