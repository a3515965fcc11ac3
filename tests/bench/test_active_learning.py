"""bench/active_learning.py's own arithmetic (curve crossings, label savings, rounds) on tiny synthetic data."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "active_learning.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("active_learning_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_labels_to_reach_interpolates_the_first_crossing(bench):
    budgets = [50, 100, 200]
    # 0.65 lies halfway between 0.6 (100 labels) and 0.7 (200 labels): 150
    assert bench.labels_to_reach(budgets, [0.5, 0.6, 0.7], 0.65) == pytest.approx(150)
    assert bench.labels_to_reach(budgets, [0.5, 0.6, 0.7], 0.45) == 50  # reached at once
    # the first crossing counts: 0.65 is 0.15 of the 0.2 rise from 50 to 100 labels: 50 + 0.75 * 50 = 87.5
    assert bench.labels_to_reach(budgets, [0.5, 0.7, 0.6], 0.65) == pytest.approx(87.5)
    assert bench.labels_to_reach(budgets, [0.5, 0.6, 0.7], 0.8) is None


def test_label_savings_by_hand(bench):
    budgets = [50, 100, 200]
    random_runs = [
        bench.Run(accuracy={50: 0.5, 100: 0.55, 200: 0.6}),
        bench.Run(accuracy={50: 0.5, 100: 0.6, 200: 0.7}),
    ]
    doubt_runs = [
        bench.Run(accuracy={50: 0.5, 100: 0.65, 200: 0.7}),
        bench.Run(accuracy={50: 0.5, 100: 0.55, 200: 0.6}),
    ]
    row = bench.label_savings(random_runs, doubt_runs, budgets)
    # target: random's mean at 200 = 0.65; doubt's mean curve 0.5, 0.6, 0.65 reaches it at 200: ratio 1
    assert row["target_accuracy"] == pytest.approx(0.65) and row["labels_needed"] == pytest.approx(200)
    assert row["ratio"] == pytest.approx(1.0)
    # seed 0: target 0.6, crossed on the way from 0.5 (50) to 0.65 (100) at 50 + 0.1/0.15*50 = 83.3: 200/83.3 = 2.4;
    # seed 1: target 0.7, never reached
    assert row["per_seed_ratios"] == [pytest.approx(2.4, abs=1e-3), None]
    assert row["seeds_reaching_target"] == 1
    # gains after the first budget: seed 0 (0.10 + 0.10) / 2 = 0.10, seed 1 (-0.05 - 0.10) / 2 = -0.075
    assert row["mean_gain_over_budgets"] == pytest.approx(0.0125)
    assert row["seeds_with_positive_gain"] == 1


def test_rounds_end_at_every_budget_and_batch(bench):
    assert bench.round_ends([50, 100, 400], None) == [50, 100, 400]
    assert bench.round_ends([50, 100, 400], 100) == [50, 100, 150, 250, 350, 400]


def synthetic_setup(bench, *, seed: int = 0):
    """200 pool and 100 held-out pairs whose feature difference is the true margin along one axis, plus noise."""
    rng = np.random.default_rng(seed)
    diff = rng.normal(size=(300, 4))
    diff[:, 0] = np.abs(diff[:, 0]) * 2  # chosen is truly better along the first feature, by very different margins
    return bench.Setup(
        diff=diff,
        prompts=rng.normal(size=(300, 3)),
        pool=np.arange(200),
        held=np.arange(200, 300),
        budgets=[10, 20, 40],
        members=3,
        c=1.0,
    )


def test_strategies_share_their_start_and_label_exactly_the_budgets(bench):
    setup = synthetic_setup(bench)
    random_run = bench.run_strategy(bench.Strategy("random", by_doubt=False), setup, seed=1)
    doubt_run = bench.run_strategy(bench.Strategy("uncertainty", by_doubt=True, clusters=2, batch=5), setup, seed=1)
    assert random_run.labelled[10].tolist() == doubt_run.labelled[10].tolist()
    for run in (random_run, doubt_run):
        for budget in setup.budgets:
            labelled = run.labelled[budget]
            assert len(labelled) == budget == len(set(labelled.tolist()))
            assert set(labelled.tolist()) <= set(setup.pool.tolist())
        assert set(run.labelled[20].tolist()) <= set(run.labelled[40].tolist())
        assert set(run.accuracy) == {10, 20, 40} and run.heads.shape == (3, 4)


def test_uncertainty_asks_about_the_closest_pairs(bench):
    # the true margin is the first feature: after the shared start, doubt picks pairs nearer the boundary than chance
    setup = synthetic_setup(bench)
    random_run = bench.run_strategy(bench.Strategy("random", by_doubt=False), setup, seed=2)
    doubt_run = bench.run_strategy(bench.Strategy("uncertainty", by_doubt=True), setup, seed=2)
    start = set(random_run.labelled[10].tolist())

    def asked_margin(run):
        return np.mean([setup.diff[i, 0] for i in run.labelled[40].tolist() if i not in start])

    assert asked_margin(doubt_run) < 0.5 * asked_margin(random_run)
