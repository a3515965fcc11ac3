"""`plumb reward eval`: the report, the table, the gate's exit status, agreement ceiling, and a model without a head."""

import json
import math

import datasets
import numpy as np
import pytest
from scipy import stats

from plumb.cli import main as plumb_main
from plumb.data import load_records
from reward import metrics as m
from reward.evaluate import evaluate_scores, format_table, gate_failures, rater_count, score_pairs
from reward.score import load_reward_model
from tests.support.reward import HandScorer, ece_by_hand


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_eval_command_reports_what_scoring_each_pair_by_hand_gives(trained_reward_dir, tmp_path, capsys):
    status = plumb_main(
        [
            "reward",
            "eval",
            "--model_name_or_path",
            str(trained_reward_dir),
            "--dataset_name",
            "builtin:prefs",
            "--output_dir",
            str(tmp_path),
            "--bootstrap_samples",
            "100",
            "--batch_size",
            "8",
        ]
    )
    assert status == 0
    report = json.loads((tmp_path / "eval_report.json").read_text())

    # every held-out pair scored alone, cut to the max_length the model was trained with (64)
    pairs = list(load_records("builtin:prefs", "test"))
    chosen, rejected = HandScorer(trained_reward_dir, max_length=64).pairs(pairs)
    margins = chosen - rejected
    correct = (chosen > rejected).astype(float)
    assert 0 < correct.mean() < 1  # a model neither always right nor always wrong: the check can tell rows apart
    # batched and single scoring agree to ~1e-8; a pair closer than 1e-6 to a tie may go either way
    slack = int((np.abs(margins) < 1e-6).sum())

    assert report["pairs"] == len(pairs) == 57 and report["max_length"] == 64
    assert report["accuracy"] == pytest.approx(correct.mean(), abs=slack / 57 + 1e-12)
    assert report["mean_margin"] == pytest.approx(margins.mean(), abs=1e-6)
    assert report["ece"] == pytest.approx(ece_by_hand(chosen, rejected, 10), abs=slack / 57 + 1e-6)
    assert sum(b["count"] for b in report["reliability"]) == 57
    chosen_length = [len(row["chosen"][0]["content"]) for row in pairs]
    rejected_length = [len(row["rejected"][0]["content"]) for row in pairs]
    longer = np.mean([1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen_length, rejected_length)])
    assert report["length_baseline_accuracy"] == pytest.approx(longer)
    spearman = stats.spearmanr(np.concatenate([chosen, rejected]), chosen_length + rejected_length).statistic
    assert report["reward_length_spearman"] == pytest.approx(spearman, abs=1e-3)
    categories = [row["meta"]["category"] for row in pairs]
    assert report["by_group"] == {
        name: {
            "pairs": categories.count(name),
            "accuracy": pytest.approx(
                np.mean([c for c, g in zip(correct, categories) if g == name]), abs=slack / categories.count(name)
            ),
        }
        for name in ("rude", "unhelpful", "wrong")
    }
    assert (tmp_path / "reliability.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert f"accuracy                    {correct.mean():.3f}" in printed
    assert f"longer-is-better baseline   {longer:.3f}" in printed
    assert "by group: wrong" in printed


def test_report_figures_by_hand():
    def message(text):
        return [{"role": "assistant", "content": text}]

    # (chosen, rejected, source) and their rewards (chosen, rejected):
    # pair 0: chosen longer, reward 1.2 vs 0 -> right, margin 1.2, p = sigmoid(1.2) = 0.769
    # pair 1: chosen longer, reward 0 vs 1 -> wrong, margin -1, p = sigmoid(-1), confidence sigmoid(1) = 0.731
    # pair 2: equal length, reward 0.5 vs 0.5 -> a tie, half right, margin 0, p = 0.5
    # pair 3: chosen longer, reward 1 vs -2 -> right, margin 3, p = sigmoid(3) = 0.953
    texts = [("aaaa", "bb", "a"), ("aaaa", "bbb", "a"), ("aa", "bb", "b"), ("aaa", "b", "b")]
    pairs = datasets.Dataset.from_list(
        [
            {"prompt": message("q"), "chosen": message(c), "rejected": message(r), "meta": {"source": source}}
            for c, r, source in texts
        ]
    )
    chosen, rejected = np.array([1.2, 0.0, 0.5, 1.0]), np.array([0.0, 1.0, 0.5, -2.0])
    report = evaluate_scores(pairs, chosen, rejected, bootstrap_samples=200, num_bins=5, seed=3)

    assert report["pairs"] == 4
    assert report["accuracy"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert report["mean_margin"] == pytest.approx((1.2 - 1 + 0 + 3) / 4)
    # longer-is-better: right on pairs 0, 1, 3, a tie on pair 2
    assert report["length_baseline_accuracy"] == pytest.approx((1 + 1 + 0.5 + 1) / 4)
    # 5 bins of width 0.1: 0.5 (half right) alone in bin 0, no gap; sigmoid(1.2) (right) and sigmoid(1) (wrong)
    # share bin 2: accuracy 0.5 against their mean confidence; sigmoid(3) (right) alone in bin 4
    ece = 2 / 4 * abs(0.5 - (sigmoid(1.2) + sigmoid(1)) / 2) + 1 / 4 * (1 - sigmoid(3))
    assert report["ece"] == pytest.approx(ece) and ece == pytest.approx(0.136752, abs=1e-6)
    assert [b["count"] for b in report["reliability"]] == [1, 0, 2, 0, 1]
    # rewards (1.2, 0, .5, 1, 0, 1, .5, -2) against lengths (4, 4, 2, 3, 2, 3, 2, 1)
    assert report["reward_length_spearman"] == pytest.approx(
        stats.spearmanr([1.2, 0, 0.5, 1, 0, 1, 0.5, -2], [4, 4, 2, 3, 2, 3, 2, 1]).statistic
    )
    assert report["by_group"] == {"a": {"pairs": 2, "accuracy": 0.5}, "b": {"pairs": 2, "accuracy": 0.75}}
    # the interval is the bootstrap of the per-pair correctness (1, 0, 0.5, 1), not of the rewards
    assert report["accuracy_ci95"] == list(m.bootstrap_ci([1.0, 0.0, 0.5, 1.0], samples=200, seed=3))
    assert "by_agreement" not in report and "agreement_ceiling" not in report  # no rater data

    # a group column wins over meta
    with_column = evaluate_scores(pairs.add_column("category", ["x", "y", "x", "x"]), chosen, rejected)
    assert with_column["by_group"] == {
        "x": {"pairs": 3, "accuracy": pytest.approx(2.5 / 3)},
        "y": {"pairs": 1, "accuracy": 0.0},
    }


def test_an_ensemble_scores_each_pair_with_the_mean_of_its_members(trained_reward_dir, tiny_reward_dir):
    pairs = load_records("builtin:prefs", "test").select(range(5))
    members = [load_reward_model(str(trained_reward_dir)), load_reward_model(tiny_reward_dir)]
    chosen, rejected = score_pairs(members, pairs, max_length=64, batch_size=2)
    (chosen_a, rejected_a), (chosen_b, rejected_b) = (
        HandScorer(path, trained_reward_dir, max_length=64).pairs(pairs)
        for path in (trained_reward_dir, tiny_reward_dir)
    )
    assert np.abs(chosen_a - chosen_b).min() > 1e-4  # the two members disagree: the mean is neither of them
    assert chosen == pytest.approx((chosen_a + chosen_b) / 2, abs=1e-6)
    assert rejected == pytest.approx((rejected_a + rejected_b) / 2, abs=1e-6)


def test_gate_exits_non_zero_when_the_model_falls_short(trained_reward_dir, tmp_path, capsys):
    status = plumb_main(
        [
            "reward",
            "eval",
            "--model_name_or_path",
            str(trained_reward_dir),
            "--output_dir",
            str(tmp_path),
            "--min-accuracy",
            "1.01",
            "--max-ece",
            "0.0",
            "--bootstrap_samples",
            "50",
        ]
    )
    assert status == 1
    printed = capsys.readouterr().out
    assert "below --min-accuracy 1.01" in printed and "above --max-ece 0.0" in printed


def test_gate_passes_when_no_limit_is_broken():
    report = {"accuracy": 0.8, "ece": 0.05}
    assert gate_failures(report, min_accuracy=0.7, max_ece=0.1) == []
    assert gate_failures(report, min_accuracy=None, max_ece=None) == []
    assert len(gate_failures({"accuracy": float("nan"), "ece": 0.0}, min_accuracy=0.5, max_ece=None)) == 1


def test_agreement_ceiling_and_accuracy_by_agreement():
    message = [{"role": "assistant", "content": "x"}]
    metas = [
        {"raters": ["e", "f"]},  # no agreement recorded: left out of the agreement figures
        {"agreement": 1.0, "raters": ["a", "b", "c"]},
        {"agreement": 2 / 3, "raters": ["a", "b", "c"]},
        {"agreement": 1.0, "raters": ["b", "c", "d"]},
        {"agreement": 1.0, "raters": ["a"]},
    ]
    pairs = datasets.Dataset.from_list(
        [
            {
                "prompt": message,
                "chosen": [{"role": "assistant", "content": "long reply"}],
                "rejected": message,
                "meta": meta,
            }
            for meta in metas
        ]
    )
    # model wrong on pair 0 (no agreement), right on pairs 1, 3 and 4, wrong on the contested pair 2
    report = evaluate_scores(
        pairs, np.array([0.0, 1.0, 0.0, 1.0, 1.0]), np.array([1.0, 0.0, 1.0, 0.0, 0.0]), bootstrap_samples=50
    )
    # ceiling: mean agreement over the three pairs with several raters = (1 + 2/3 + 1) / 3
    assert report["agreement_ceiling"] == pytest.approx(8 / 9)
    assert report["agreement_ceiling_pairs"] == 3
    # the model on those three pairs: right, wrong, right
    assert report["accuracy_on_ceiling_pairs"] == pytest.approx(2 / 3)
    assert report["by_agreement"] == {
        "0.6-0.8": {"pairs": 1, "accuracy": 0.0},
        "1 (unanimous)": {"pairs": 3, "accuracy": 1.0},
    }
    assert report["length_baseline_accuracy"] == 1.0
    assert "raters agreement (ceiling)  0.889" in format_table(report)


def test_rater_count_reads_ids_or_a_number():
    assert rater_count({"raters": ["a", "b"]}) == 2 and rater_count({"raters": 3}) == 3 and rater_count({}) == 1
    # a per-rater export row names one rater but says how many judged the item
    assert rater_count({"raters": ["a"], "judgments": 3}) == 3


def test_causal_lm_without_a_head_is_refused_with_what_to_do(tiny_policy_dir, capsys):
    status = plumb_main(["reward", "eval", "--model_name_or_path", tiny_policy_dir])
    assert status == 2
    error = capsys.readouterr().err
    assert "without a reward head" in error and f"plumb reward train --model_name_or_path {tiny_policy_dir}" in error
