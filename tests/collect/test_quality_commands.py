"""`plumb collect quality` and `plumb collect leaderboard` end to end on the shipped demos and on small files."""

import csv
import json
from pathlib import Path

import pytest

from collect import leaderboard, quality
from plumb.config import ConfigError, parse_config
from plumb.data import DataError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "collect"


def run(module, config: str, tmp_path, *flags):
    flags = ["--config", str(CONFIGS / config), "--output_dir", str(tmp_path), *flags]
    args = parse_config(module.config_types(), flags)
    return module.main(*args)


# The demo configs read `make demo`'s own exports; here the shipped synthetic data stands in for them.
SHIPPED_JUDGMENTS = ("--judgments", "builtin:demo-judgments", "--model_rater", "reward-model")


def test_quality_demo_flags_the_careless_rater(tmp_path, capsys):
    report = run(quality, "quality-demo.yaml", tmp_path, *SHIPPED_JUDGMENTS)
    raters = {row["rater"]: row for row in report["raters"]}
    assert "reward-model" not in raters  # pre-labels are compared to the raters, not counted among them
    assert raters["fred"]["flags"] == ["gold", "consistency"] and raters["fred"]["speed"] == "fast"
    assert raters["fred"]["left_win_rate"] > 0.8 and raters["fred"]["position_p_value"] < 1e-6
    assert raters["ana"]["flags"] == []
    assert 0 < report["agreement"]["fleiss_kappa"] < report["agreement"]["raw_agreement"] < 1
    assert report["reward_model"]["items"] > 0
    assert "fred" in capsys.readouterr().out
    saved = json.loads((tmp_path / "quality.json").read_text())
    assert saved["agreement"]["raw_agreement"] == report["agreement"]["raw_agreement"]
    consensus = [json.loads(line) for line in (tmp_path / "consensus.jsonl").read_text().splitlines()]
    assert len(consensus) == report["items"]
    assert [row["item"] for row in consensus if row["contested"]] == report["contested"]
    assert len(report["contested"]) == report["contested_items"]
    assert all(row["winner"] in (*row["candidates"], "tie", None) for row in consensus)
    assert (tmp_path / "plumb_config.yaml").is_file()


def test_quality_excludes_contested_items_when_asked(tmp_path):
    report = run(
        quality,
        "quality-demo.yaml",
        tmp_path,
        *SHIPPED_JUDGMENTS,
        "--exclude_contested",
        "true",
        "--aggregation",
        "dawid_skene",
        "--min_agreement",
        "0.99",
    )
    lines = (tmp_path / "consensus.jsonl").read_text().splitlines()
    assert report["contested_items"] > 0 and len(lines) == report["items"] - report["contested_items"]


def test_quality_rejects_an_unknown_aggregation():
    with pytest.raises(ConfigError, match="aggregation"):
        parse_config(
            quality.config_types(),
            ["--config", str(CONFIGS / "quality-demo.yaml"), *SHIPPED_JUDGMENTS, "--aggregation", "median"],
        )


def test_leaderboard_demo_writes_table_json_and_plots(tmp_path, capsys):
    shipped = ("--battles", "builtin:demo-battles", "--l2", "0")
    result = run(leaderboard, "leaderboard-demo.yaml", tmp_path, *shipped, "--bootstrap_rounds", "50")
    # The demo's known strengths: grpo-g8 1130 ... sft-v1 900; the ends of the order are clear.
    order = [row["policy"] for row in result["ratings"]]
    assert order[-1] == "sft-v1" and order.index("grpo-g8") < order.index("dpo-beta0.1")
    assert result["battles"] == 600 and result["bootstrap_rounds"] == 50
    assert "grpo-g8" in capsys.readouterr().out
    assert json.loads((tmp_path / "leaderboard.json").read_text()) == result
    for plot in ("ratings.png", "win_rates.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_leaderboard_reads_arena_csv_and_drops_both_bad(tmp_path):
    path = tmp_path / "battles.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model_a", "model_b", "winner"])
        writer.writerows([["x", "y", "model_a"], ["y", "x", "model_a"], ["x", "y", "tie (bothbad)"], ["x", "y", "tie"]])
    args = parse_config(
        leaderboard.config_types(),
        [
            "--battles",
            str(path),
            "--output_dir",
            str(tmp_path / "out"),
            "--both_bad",
            "drop",
            "--bootstrap_rounds",
            "0",
        ],
    )
    result = leaderboard.main(*args)
    assert result["battles"] == 3 and result["dropped"] == 1
    assert result["battle_count"] == {"x": {"y": 3}, "y": {"x": 3}}


def test_leaderboard_names_missing_columns(tmp_path):
    path = tmp_path / "battles.jsonl"
    path.write_text('{"model_a": "x", "model_b": "y", "result": "model_a"}\n')
    args = parse_config(leaderboard.config_types(), ["--battles", str(path), "--output_dir", str(tmp_path)])
    with pytest.raises(DataError, match="missing column.* winner"):
        leaderboard.main(*args)


def test_the_commands_thresholds_are_the_reports_defaults():
    from collect.domain.quality.report import QualitySettings

    assert quality.QualityArguments().settings() == QualitySettings()
    assert quality.QualityArguments(min_gold=9, aggregation="dawid_skene").settings().min_gold == 9
