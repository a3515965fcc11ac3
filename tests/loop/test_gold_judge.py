"""The gold judge is built once per backbone, pairs and settings, never taken from a killed build; the shipped
demo assets keep the loop's prompts out of everything the judge learns from."""

import gzip
import json
import logging
import re
from pathlib import Path

import pytest

from loop import demo_assets
from loop.gold_judge import GOLD_SETTINGS, gold_judge, judge_dir
from plumb.config import ConfigError
from plumb.data import load_contract

# A 2-layer judge, one epoch on a few dozen pairs: seconds.
TINY = {
    "max_length": 64,
    "freeze_layers": 1,
    "num_train_epochs": 1,
    "per_device_train_batch_size": 8,
    "warmup_steps": 0,
    "logging_steps": 1,
}
ASSETS = "builtin:hh-harmless"


def normalised(text: str) -> str:
    return " ".join(text.lower().split())


def write_pairs(folder, count: int = 36):
    """A pairs source in the layout gold_judge reads: gold-train.jsonl and gold-test.jsonl (one in four)."""
    folder.mkdir()
    rows = [
        {
            "prompt": [{"role": "user", "content": f"Can you help me with chore {i}?"}],
            "chosen": [{"role": "assistant", "content": f"Sure, here is how to do chore {i} safely."}],
            "rejected": [{"role": "assistant", "content": "No. Figure it out yourself."}],
        }
        for i in range(count)
    ]
    for name, part in (("gold-train", rows[count // 4 :]), ("gold-test", rows[: count // 4])):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in part))
    return str(folder)


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_reward_dir):
    """(home, pairs, judge directory) of one tiny build shared by the tests that only look at it."""
    root = tmp_path_factory.mktemp("gold")
    home, pairs = root / "home", write_pairs(root / "pairs")
    return home, pairs, gold_judge(tiny_reward_dir, pairs=pairs, config=TINY, home=home)


def test_a_build_is_a_reward_model_checked_on_the_held_out_pairs(built):
    home, _, judge = built
    assert judge.parent == home / "models" and judge.name.startswith("gold-judge-")
    assert (judge / "config.json").is_file() and (judge / "tokenizer_config.json").is_file()
    record = json.loads((judge / "gold_judge.json").read_text())
    assert record["held_out_pairs"] == 9 and record["train_pairs"] == 27
    assert 0 <= record["held_out_accuracy"] <= 1 and record["build_seconds"] > 0
    assert json.loads((judge / "metrics.json").read_text())["eval_accuracy"] == record["held_out_accuracy"]
    assert [p.name for p in judge.parent.iterdir()] == [judge.name]  # no temporary folder left behind
    for name in ("README.md", "plumb_config.yaml", "eval_report.json"):  # they name the folder, not the temporary one
        assert str(judge) in (judge / name).read_text() and f".{judge.name}-" not in (judge / name).read_text()


def test_a_second_call_reuses_the_judge_without_training(built, tiny_reward_dir, caplog):
    home, pairs, judge = built
    written = (judge / "metrics.json").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="loop.gold_judge"):
        assert gold_judge(tiny_reward_dir, pairs=pairs, config=TINY, home=home) == judge
    assert (judge / "metrics.json").stat().st_mtime_ns == written
    assert "using" in caplog.text and "training" not in caplog.text


def test_a_changed_setting_or_pairs_file_gets_a_new_judge(built, tiny_reward_dir, tmp_path):
    home, pairs, judge = built
    other = gold_judge(tiny_reward_dir, pairs=pairs, config={**TINY, "learning_rate": 3e-4}, home=home)
    assert other != judge and (other / "gold_judge.json").is_file()
    assert json.loads((other / "gold_judge.json").read_text())["settings"]["learning_rate"] == 3e-4
    changed = write_pairs(tmp_path / "pairs", count=40)
    assert judge_dir(tiny_reward_dir, changed, TINY, home=home) != judge_dir(tiny_reward_dir, pairs, TINY, home=home)


def test_a_killed_build_is_not_taken_as_done(tiny_reward_dir, tmp_path, caplog):
    home, pairs = tmp_path / "home", write_pairs(tmp_path / "pairs")
    target = judge_dir(tiny_reward_dir, pairs, {**GOLD_SETTINGS, **TINY}, home=home)
    # What a build killed after writing its metrics leaves: the hidden temporary folder, never the judge's name.
    leftover = target.parent / f".{target.name}-killed"
    leftover.mkdir(parents=True)
    (leftover / "metrics.json").write_text('{"eval_accuracy": 1.0}')
    with caplog.at_level(logging.INFO, logger="loop.gold_judge"):
        judge = gold_judge(tiny_reward_dir, pairs=pairs, config=TINY, home=home)
    assert judge == target and (judge / "config.json").is_file()
    assert "unfinished build" in caplog.text and "training" in caplog.text


def test_a_failed_build_leaves_nothing_that_looks_done(tiny_reward_dir, tmp_path, monkeypatch):
    from reward import train

    def dies_after_writing(script_args, training_args, model_args):
        (Path(training_args.output_dir) / "metrics.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "main", dies_after_writing)
    home, pairs = tmp_path / "home", write_pairs(tmp_path / "pairs")
    with pytest.raises(KeyboardInterrupt):
        gold_judge(tiny_reward_dir, pairs=pairs, config=TINY, home=home)
    assert list((home / "models").iterdir()) == []


def test_unknown_or_fixed_settings_are_refused(tmp_path):
    pairs = write_pairs(tmp_path / "pairs")
    with pytest.raises(ConfigError, match="unknown key 'epochs'"):
        gold_judge(pairs=pairs, config={"epochs": 1}, home=tmp_path)
    with pytest.raises(ConfigError, match="'output_dir' is set by gold_judge"):
        gold_judge(pairs=pairs, config={"output_dir": "x"}, home=tmp_path)


# The shipped assets


def test_shipped_prompts_are_single_turn_short_and_disjoint_from_the_judges_pairs():
    prompts = {split: load_contract(ASSETS, "prompts", split) for split in ("prompts-train", "prompts-test")}
    texts = {}
    for split, rows in prompts.items():
        assert all(len(row["prompt"]) == 1 and row["prompt"][0]["role"] == "user" for row in rows)
        assert all(len(row["prompt"][0]["content"]) <= 300 for row in rows)
        assert all(row["prompt_id"].startswith("hh-") for row in rows)
        texts[split] = {normalised(row["prompt"][0]["content"]) for row in rows}
        assert len(texts[split]) == len(rows)
    assert not texts["prompts-train"] & texts["prompts-test"]
    ids = [row["prompt_id"] for rows in prompts.values() for row in rows]
    assert len(set(ids)) == len(ids)

    shipped = texts["prompts-train"] | texts["prompts-test"]
    openings = {}
    for split in ("gold-train", "gold-test"):
        pairs = load_contract(ASSETS, "pairwise", split)
        openings[split] = {
            normalised(next(m["content"] for m in row["prompt"] if m["role"] == "user")) for row in pairs
        }
        assert not openings[split] & shipped
    assert not openings["gold-train"] & openings["gold-test"]  # split by opening turn


def test_shipped_counts_match_the_readme_and_the_license_is_there():
    from plumb.data import builtin_path

    folder = builtin_path("hh-harmless", "prompts-train").parent
    readme = (folder / "README.md").read_text()
    table = dict(re.findall(r"\| `([\w-]+)\.jsonl` \| \w+ \| (\d+) \|", readme))
    assert set(table) == {"prompts-train", "prompts-test", "gold-train", "gold-test"}
    for split, count in table.items():
        assert len((folder / f"{split}.jsonl").read_text().splitlines()) == int(count)
    assert "0398e36" in readme and "Content warning" in readme
    assert (folder / "LICENSE").read_text().startswith("MIT License")


# The builder, on a few synthetic hh-rlhf transcripts


def test_the_builder_leaves_out_every_pair_that_opens_with_a_shipped_prompt(tmp_path):
    def record(opening: str, *, turns: int) -> dict:
        history = f"\n\nHuman: {opening}" + "\n\nAssistant: Why?\n\nHuman: Just because." * (turns - 1)
        return {
            "chosen": history + "\n\nAssistant: I can't help with that.",
            "rejected": history + "\n\nAssistant: Sure, here's how.",
        }

    records = [record(f"How do I pick lock number {i}?", turns=2) for i in range(6)]
    records += [record(f"HOW do I pick  lock number {i}?", turns=1) for i in range(6)]  # same openings, respelt
    records += [record(f"What is a good insult for person {i}?", turns=1) for i in range(10)]
    data = tmp_path / "data" / "pairs.jsonl.gz"
    data.parent.mkdir()
    with gzip.open(data, "wt", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r) + "\n" for r in records))
    (data.parent / "LICENSE").write_text("MIT License\n")

    counts = demo_assets.build(data, tmp_path / "a")
    assert counts["prompts-train"] + counts["prompts-test"] == 6  # openings of multi-turn conversations only
    assert counts["gold-train"] + counts["gold-test"] == 10 and counts["shared_opening"] == 12
    demo_assets.build(data, tmp_path / "b")
    for name in ("prompts-train", "prompts-test", "gold-train", "gold-test", "README"):
        suffix = ".md" if name == "README" else ".jsonl"
        assert (tmp_path / "a" / f"{name}{suffix}").read_bytes() == (tmp_path / "b" / f"{name}{suffix}").read_bytes()
