"""`plumb reward eval`: the report, the table, the gate's exit status, agreement ceiling, and a model without a head."""

import json

import datasets
import numpy as np
import pytest

from plumb.cli import main as plumb_main
from reward.evaluate import evaluate_scores, format_table, gate_failures, rater_count


def test_eval_command_writes_the_report_and_prints_the_table(trained_reward_dir, tmp_path, capsys):
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
        ]
    )
    assert status == 0
    report = json.loads((tmp_path / "eval_report.json").read_text())
    low, high = report["accuracy_ci95"]
    assert report["pairs"] == 57 and low <= report["accuracy"] <= high
    assert 0 <= report["ece"] <= 1 and 0 <= report["length_baseline_accuracy"] <= 1
    assert (tmp_path / "reliability.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "longer-is-better baseline" in printed and "by group: wrong" in printed


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
    # model right on pairs 0, 2 and 3, wrong on the contested pair 1
    report = evaluate_scores(
        pairs, np.array([1.0, 0.0, 1.0, 1.0]), np.array([0.0, 1.0, 0.0, 0.0]), bootstrap_samples=50
    )
    # ceiling: mean agreement over the three pairs with several raters = (1 + 2/3 + 1) / 3
    assert report["agreement_ceiling"] == pytest.approx(8 / 9)
    assert report["agreement_ceiling_pairs"] == 3
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
