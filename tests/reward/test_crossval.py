"""`plumb reward eval --kfold K` / `plumb reward cv`: folds by prompt, each scored by a model that never saw it, and
per-fold, mean, sd and interval figures worked out again from the held-out predictions."""

import json
import statistics

import numpy as np
import pytest
from scipy import stats

from plumb.cli import main as plumb_main
from plumb.data import DataError, prompt_key, ranking_pairs
from reward import metrics as m
from reward.crossval import prompt_folds
from tests.support.reward import HandScorer, ece_by_hand

# (prompt as typed, chosen, rejected): 16 pairs, 7 prompts once case and spacing are ignored,
# sizes 4 ("what is 2+2?"), 3, 3, 2, 2, 1, 1
PAIRS = [
    ("What is 2+2?", "Four.", "Five."),
    ("what is  2+2? ", "It is 4.", "No idea."),
    ("WHAT IS 2+2?", "2+2 = 4", "22"),
    ("What is\t2+2?", "Four, of course.", "Fish."),
    ("Name a colour.", "Blue.", "Seven."),
    ("name a colour.", "Green.", "Tuesday."),
    ("NAME A COLOUR.", "Red.", "A spoon."),
    ("Say hello.", "Hello!", "Go away."),
    ("say hello.", "Hi there!", "No."),
    ("Say  hello.", "Hello, friend.", "Whatever."),
    ("Capital of France?", "Paris.", "Lyon."),
    ("capital of france?", "It's Paris.", "Berlin."),
    ("Best pet?", "A dog, for many people.", "A rock."),
    ("best pet? ", "Cats are lovely.", "None, ever."),
    ("Largest planet?", "Jupiter.", "Pluto."),
    ("A prime number?", "Seven.", "Eight."),
]


def normalised(text: str) -> str:
    return " ".join(text.lower().split())


def message(role, text):
    return [{"role": role, "content": text}]


def pair_rows():
    return [
        {"prompt": message("user", p), "chosen": message("assistant", c), "rejected": message("assistant", r)}
        for p, c, r in PAIRS
    ]


def train_flags(model_dir, output_dir, dataset):
    """`plumb reward train` flags of a 2-step run on a tiny model."""
    return [
        *("--model_name_or_path", str(model_dir), "--output_dir", str(output_dir), "--dataset_name", str(dataset)),
        *("--max_steps", "2", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "16"),
        *("--max_length", "64", "--learning_rate", "1e-2", "--report_to", "none", "--save_strategy", "no"),
        *("--logging_steps", "1", "--seed", "0", "--bootstrap_samples", "200"),
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_folds_never_share_a_prompt_cover_every_row_once_and_balance_the_rows():
    keys = [prompt_key(row) for row in pair_rows()]
    folds = prompt_folds(keys, 3, seed=0)
    assert folds.shape == (16,) and set(folds.tolist()) == {0, 1, 2}  # each row in exactly one fold
    prompts_of = [{normalised(PAIRS[i][0]) for i in np.flatnonzero(folds == f)} for f in range(3)]
    assert sum(len(p) for p in prompts_of) == len(set().union(*prompts_of)) == 7  # no prompt in two folds
    # largest prompt first, each to the lightest fold: 4 | 3 | 3, then 2 -> 5, 2 -> 5, 1 -> 5, 1 -> 6
    assert sorted(np.bincount(folds).tolist()) == [5, 5, 6]
    # the seed deals the prompts; the same seed deals them the same way
    assert (prompt_folds(keys, 3, seed=0) == folds).all()
    assert any((prompt_folds(keys, 3, seed=s) != folds).any() for s in range(1, 6))


def test_more_folds_than_prompts_is_refused_naming_the_counts():
    keys = [prompt_key(row) for row in pair_rows()]
    with pytest.raises(DataError, match=r"pairs.jsonl: 16 rows have 7 distinct prompts, fewer than kfold=8"):
        prompt_folds(keys, 8, source="pairs.jsonl")


def test_eval_kfold_scores_each_fold_with_a_model_that_never_saw_its_prompts(tmp_path, tiny_reward_dir, capsys):
    data = write_jsonl(tmp_path / "pairs.jsonl", pair_rows())
    flags = train_flags(tiny_reward_dir, tmp_path / "out", data)
    status = plumb_main(["reward", "eval", "--kfold", "3", "--keep_fold_models", "true", *flags])
    assert status == 0
    out = tmp_path / "out" / "cv-3fold"
    report = json.loads((out / "cv_report.json").read_text())
    predictions = [json.loads(line) for line in (out / "cv_predictions.jsonl").read_text().splitlines()]

    # every pair held out exactly once, in the fold of its prompt
    assert sorted(p["row"] for p in predictions) == list(range(16))
    fold_of = {p["row"]: p["fold"] for p in predictions}
    folds = {f: [r for r in range(16) if fold_of[r] == f] for f in range(3)}
    for f, rows in folds.items():
        held_prompts = {normalised(PAIRS[r][0]) for r in rows}
        # ... and never trained on: the fold's training file holds exactly the other rows, none of its prompts
        trained = [json.loads(line) for line in (out / f"fold-{f}" / "data" / "train.jsonl").read_text().splitlines()]
        assert sorted(row["chosen"][0]["content"] for row in trained) == sorted(
            PAIRS[r][1] for r in range(16) if fold_of[r] != f
        )
        assert not held_prompts & {normalised(row["prompt"][0]["content"]) for row in trained}

        # the rewards are the fold's own model's, each pair scored alone
        hand = HandScorer(out / f"fold-{f}" / "model", max_length=64)
        chosen, rejected = hand.pairs([pair_rows()[r] for r in rows])
        mine = sorted((p for p in predictions if p["fold"] == f), key=lambda p: p["row"])
        assert [p["chosen_reward"] for p in mine] == pytest.approx(chosen, abs=1e-5)
        assert [p["rejected_reward"] for p in mine] == pytest.approx(rejected, abs=1e-5)

    # per-fold figures from the predictions, worked out again here
    per_fold = []
    for f in range(3):
        mine = [p for p in predictions if p["fold"] == f]
        c = np.array([p["chosen_reward"] for p in mine])
        r = np.array([p["rejected_reward"] for p in mine])
        accuracy = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(c, r)])
        row = report["folds"][f]
        assert row["fold"] == f and row["pairs"] == len(mine) and row["train_rows"] == 16 - len(mine)
        assert row["prompts"] == len({normalised(PAIRS[p["row"]][0]) for p in mine})
        assert row["accuracy"] == pytest.approx(accuracy)
        assert row["ece"] == pytest.approx(ece_by_hand(c, r, 10))
        assert row["mean_margin"] == pytest.approx(np.mean(c - r))
        per_fold.append(accuracy)
    assert len(set(per_fold)) > 1  # folds that differ, so sd and the interval are not trivially zero

    mean, sd = statistics.mean(per_fold), statistics.stdev(per_fold)
    low, high = stats.t.interval(0.95, df=2, loc=mean, scale=sd / np.sqrt(3))
    assert report["accuracy_mean"] == pytest.approx(mean)
    assert report["accuracy_sd"] == pytest.approx(sd)
    assert report["accuracy_t_interval95"] == pytest.approx([low, high])
    all_correct = [
        1.0 if p["chosen_reward"] > p["rejected_reward"] else 0.5 if p["chosen_reward"] == p["rejected_reward"] else 0.0
        for p in predictions
    ]
    assert report["accuracy_pooled"] == pytest.approx(np.mean(all_correct))
    assert report["accuracy_pooled_ci95"] == list(m.bootstrap_ci(all_correct, samples=200, seed=0))
    assert report["kfold"] == 3 and report["pairs"] == 16 and report["prompts"] == 7

    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].startswith(f"cv: 3 folds by prompt, accuracy {mean:.3f} +/- {sd:.3f}")
    assert f"95% t-interval {low:.3f}-{high:.3f}" in printed[-1]
    assert any(line.split()[:2] == ["0", str(report["folds"][0]["pairs"])] for line in printed)
    assert (out / "plumb_config.yaml").is_file()


def test_cv_verb_keeps_a_rankings_pairs_in_its_fold(tmp_path, tiny_reward_dir):
    rankings = [
        ("Pick a fruit.", ["Apple.", "Stone.", "Pear."], [1, 3, 2]),
        ("pick a fruit.", ["Mango.", "Mud."], [1, 2]),
        ("Greet me.", ["Hello!", "Hi.", "Go."], [1, 1, 2]),  # a tie: two pairs, not three
        ("Count to two.", ["1, 2", "2, 1", "7"], [1, 2, 3]),
        ("COUNT TO TWO.", ["One, two.", "Three."], [1, 2]),
        ("Say yes.", ["Yes.", "No."], [1, 2]),
    ]
    rows = [
        {"prompt": message("user", p), "completions": [message("assistant", c) for c in cs], "ranks": ranks}
        for p, cs, ranks in rankings
    ]
    data = write_jsonl(tmp_path / "rankings.jsonl", rows)
    assert plumb_main(["reward", "cv", "--kfold", "2", *train_flags(tiny_reward_dir, tmp_path / "out", data)]) == 0
    out = tmp_path / "out" / "cv-2fold"
    predictions = [json.loads(line) for line in (out / "cv_predictions.jsonl").read_text().splitlines()]
    per_row = {i: [p for p in predictions if p["row"] == i] for i in range(len(rows))}
    assert {i: len(ps) for i, ps in per_row.items()} == {i: len(ranking_pairs(r[2])) for i, r in enumerate(rankings)}
    fold_of_prompt = {}
    for i, ps in per_row.items():
        assert len({p["fold"] for p in ps}) == 1
        fold_of_prompt.setdefault(normalised(rankings[i][0]), set()).add(ps[0]["fold"])
    assert all(len(folds) == 1 for folds in fold_of_prompt.values())
    report = json.loads((out / "cv_report.json").read_text())
    assert report["pairs"] == len(predictions) == 3 + 1 + 2 + 3 + 1 + 1
    assert not (out / "fold-0" / "model").exists()  # fold models are deleted unless kept


def test_early_stopping_without_a_dev_share_and_one_fold_are_refused(tmp_path, tiny_reward_dir, capsys):
    data = write_jsonl(tmp_path / "pairs.jsonl", pair_rows())
    flags = train_flags(tiny_reward_dir, tmp_path / "out", data)
    early = ["--early_stopping_patience", "1", "--test_size", "0", "--eval_strategy", "steps", "--eval_steps", "1"]
    assert plumb_main(["reward", "eval", "--kfold", "3", *flags, *early]) == 2
    assert "early_stopping_patience in cross-validation needs test_size > 0" in capsys.readouterr().err
    assert plumb_main(["reward", "cv", "--kfold", "1", *flags]) == 2
    assert "kfold must be at least 2" in capsys.readouterr().err
