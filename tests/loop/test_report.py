"""The loop's report and status, from a manifest written by hand: every figure is where the stages put it."""

import json

from loop.manifest import STAGES, mark_done, mark_started, read_manifest, write_manifest
from loop.report import round_rows, write_report
from loop.status import status_text

ROUND_1 = {
    "candidates": {"campaign": "run-round-1", "tasks": 18},
    "judgments": {"mode": "simulated", "judgments": 40},
    "export": {
        "labels": 40,
        "labels_by_kind": {"human": 4, "simulated": 36},
        "round_pairs": 17,
        "agreement": {"raw_agreement": 0.75, "krippendorff_alpha_nominal": 0.5},
    },
    "reward": {"model": "m1", "accuracy": 0.7, "accuracy_ci95": [0.6, 0.8], "ece": 0.05},
    "align": {"policy": "p1"},
    "eval": {
        "win_rate": 0.65,
        "win_rate_ci": [0.55, 0.74],
        "win_rate_length_matched": 0.6,
        "length_matched_prompts": 30,
        "kl_to_reference": 1.5,
        "policy_mean_length": 120.0,
        "reference_mean_length": 150.0,
        "prompts": 100,
        "judge": "gold",
    },
}


def finished_run(tmp_path, rounds: int = 1):
    manifest = read_manifest(tmp_path)
    for number in range(1, rounds + 1):
        for stage in STAGES:
            key = f"round-{number}/{stage}"
            mark_started(tmp_path, manifest, key)
            manifest["stages"][key]["started"] -= 60  # each stage took a minute
            mark_done(tmp_path, manifest, key, ROUND_1[stage])
    return manifest


def test_report_json_has_each_rounds_figures(tmp_path):
    finished_run(tmp_path, rounds=2)
    write_report(tmp_path)
    rounds = json.loads((tmp_path / "report.json").read_text())["rounds"]
    assert [row["round"] for row in rounds] == [1, 2]
    row = rounds[0]
    assert (row["labels"], row["labels_human"], row["labels_simulated"]) == (40, 4, 36)
    assert (row["agreement"], row["reward_accuracy"], row["reward_ece"]) == (0.75, 0.7, 0.05)
    assert (row["win_rate_vs_sft"], row["win_rate_vs_sft_ci95"]) == (0.65, [0.55, 0.74])
    assert (row["win_rate_vs_sft_length_matched"], row["kl"], row["mean_length"]) == (0.6, 1.5, 120.0)
    assert 6 * 60 <= row["seconds"] <= 6 * 60 + 5  # six stages of a minute each


def test_report_page_shows_the_table_the_simulated_share_and_the_plot(tmp_path):
    finished_run(tmp_path)
    page = write_report(tmp_path).read_text()
    assert "Labels: 4 from people, 36 from simulated raters" in page
    assert "| 1 | 40 | 0.75 | 0.700 | 0.050 | 0.650 (0.55–0.74) | 0.600 (30) | – | 1.50 | 120 (150) | 6.0 |" in page
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_an_unfinished_stage_leaves_its_figures_empty_and_status_says_it_was_cut_off(tmp_path):
    manifest = finished_run(tmp_path)
    mark_started(tmp_path, manifest, "round-2/candidates")
    write_manifest(tmp_path, manifest)
    assert len(round_rows(read_manifest(tmp_path))) == 1  # round 2 finished nothing yet
    text = status_text(read_manifest(tmp_path))
    assert "round 1  eval       done in 60 s" in text
    assert "round 2  candidates started" in text and "not finished" in text
    assert "round 2  judgments  to do" in text
