"""`plumb reward eval --eval_sets a,b,c`: one model, several datasets, one table whose rows are the single-set evals."""

import json

import numpy as np
import pytest

from plumb.cli import main as plumb_main
from plumb.config import ConfigError
from plumb.data import load_records
from reward.eval_sets import parse_eval_sets
from tests.support.reward import HandScorer

ROW_KEYS = ("pairs", "accuracy", "accuracy_ci95", "ece", "mean_margin", "length_baseline_accuracy", "reliability")


def message(role, text):
    return [{"role": role, "content": text}]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def eval_flags(model_dir, output_dir):
    return ["--model_name_or_path", str(model_dir), "--output_dir", str(output_dir), "--bootstrap_samples", "100"]


@pytest.fixture
def eval_set_files(tmp_path):
    """(plain-text pairs file, rankings file with a tie, the rankings) for the cross-domain table."""
    plain = write_jsonl(
        tmp_path / "plain.jsonl",
        [
            {"prompt": "Capital of Italy?", "chosen": "Rome.", "rejected": "Milan, I believe."},
            {"prompt": "Two times three?", "chosen": "Six.", "rejected": "Five."},
            {"prompt": "Say sorry.", "chosen": "I'm sorry.", "rejected": "Never."},
            {"prompt": "A fruit?", "chosen": "An apple.", "rejected": "A chair."},
        ],
    )
    rankings = [
        ("Pick a number.", ["Seven.", "Banana.", "Three."], [1, 3, 2]),
        ("Greet me.", ["Hello!", "Hi.", "Go."], [1, 1, 2]),  # a tie gives no pair: 2 pairs, not 3
    ]
    ranked = write_jsonl(
        tmp_path / "rankings.jsonl",
        [
            {"prompt": message("user", p), "completions": [message("assistant", c) for c in cs], "ranks": ranks}
            for p, cs, ranks in rankings
        ],
    )
    return plain, ranked, rankings


def test_each_row_of_the_table_is_the_single_set_eval(trained_reward_dir, tmp_path, eval_set_files, capsys):
    plain, ranked, rankings = eval_set_files
    specs = ["builtin:prefs@test", str(plain), str(ranked)]
    status = plumb_main(["reward", "eval", "--eval_sets", ",".join(specs), *eval_flags(trained_reward_dir, tmp_path)])
    assert status == 0
    table = capsys.readouterr().out
    result = json.loads((tmp_path / "eval_sets_report.json").read_text())
    assert [report["name"] for report in result["sets"]] == specs and result["max_length"] == 64

    singles = [("builtin:prefs", "test"), (str(plain), "train"), (str(ranked), "train")]
    for index, (report, (source, split)) in enumerate(zip(result["sets"], singles)):
        single_dir = tmp_path / f"single-{index}"
        flags = ["--dataset_name", source, "--dataset_split", split, *eval_flags(trained_reward_dir, single_dir)]
        assert plumb_main(["reward", "eval", *flags]) == 0
        single = json.loads((single_dir / "eval_report.json").read_text())
        assert {key: report[key] for key in ROW_KEYS} == {key: single[key] for key in ROW_KEYS}, source
        low, high = single["accuracy_ci95"]
        assert f"{single['pairs']:>6}  {single['accuracy']:>8.3f}  {low:.3f}-{high:.3f}  {single['ece']:>5.3f}" in table
    assert [report["pairs"] for report in result["sets"]] == [57, 4, 3 + 2]

    # the rankings' row by hand: every completion scored alone, its pairs taken from the ranks
    hand = HandScorer(trained_reward_dir, max_length=64)
    correct = []
    for prompt, completions, ranks in rankings:
        scores = [hand(message("user", prompt) + message("assistant", c)) for c in completions]
        for i in range(len(ranks)):
            for j in range(len(ranks)):
                if ranks[i] < ranks[j]:
                    correct.append(1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0.0)
    assert result["sets"][2]["accuracy"] == pytest.approx(np.mean(correct))
    # the shipped test split by hand too
    chosen, rejected = hand.pairs(list(load_records("builtin:prefs", "test")))
    slack = int((np.abs(chosen - rejected) < 1e-6).sum())
    assert result["sets"][0]["accuracy"] == pytest.approx(np.mean(chosen > rejected), abs=slack / 57 + 1e-12)


def test_the_gate_names_every_set_that_fails(trained_reward_dir, tmp_path, eval_set_files, capsys):
    plain, ranked, _ = eval_set_files
    flags = ["--eval_sets", f"{plain},{ranked}", "--min-accuracy", "1.01", *eval_flags(trained_reward_dir, tmp_path)]
    assert plumb_main(["reward", "eval", *flags]) == 1
    failed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("GATE FAILED")]
    assert failed == [
        f"GATE FAILED: {name}: accuracy {report['accuracy']:.3f} is below --min-accuracy 1.01"
        for name, report in zip(
            (str(plain), str(ranked)), json.loads((tmp_path / "eval_sets_report.json").read_text())["sets"]
        )
    ]


def test_a_bad_row_in_any_set_is_named_before_the_model_loads(tmp_path, eval_set_files, capsys):
    plain, _, _ = eval_set_files
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "Hi", "chosen": "Hello", "rejected": "Go"}, {"prompt": "x"}])
    # a model folder that does not exist: the data error comes first
    flags = ["--eval_sets", f"{plain},{bad}", *eval_flags(tmp_path / "no-model", tmp_path / "out")]
    assert plumb_main(["reward", "eval", *flags]) == 2
    assert f"{bad} [test]: line 2: field 'chosen' is missing" in capsys.readouterr().err


def test_set_specs_name_a_split_with_at_unless_the_whole_name_is_a_path(tmp_path):
    odd = tmp_path / "data@v2.jsonl"
    odd.write_text("")
    assert parse_eval_sets(f"builtin:prefs@test, out/export ,{odd}", "validation") == [
        ("builtin:prefs@test", "builtin:prefs", "test"),
        ("out/export", "out/export", "validation"),
        (str(odd), str(odd), "validation"),
    ]
    with pytest.raises(ConfigError, match="no dataset named"):
        parse_eval_sets(" , ", "test")
    with pytest.raises(ConfigError, match="a.jsonl named more than once"):
        parse_eval_sets("a.jsonl,b.jsonl,a.jsonl", "test")
