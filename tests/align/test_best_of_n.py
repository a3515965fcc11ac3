"""`plumb align best-of-n`: selection maths by hand, and a run on tiny models that SFT can read."""

import json

import pytest

from align.best_of_n import BestOfNArguments, best_of_n_summary, main, select_best
from plumb.data import load_contract


def test_selection_and_gain_by_hand():
    rewards = [[1.0, 3.0, 2.0], [0.0, 0.0, -1.0]]
    assert select_best(rewards).tolist() == [1, 0]  # the first of a tie
    summary = best_of_n_summary(rewards)
    # one sample: (1 + 3 + 2 + 0 + 0 - 1) / 6 = 5/6; best: (3 + 0) / 2 = 1.5
    assert summary["mean_reward_one_sample"] == pytest.approx(5 / 6)
    assert summary["mean_reward_best"] == pytest.approx(1.5)
    assert summary["gain"] == pytest.approx(1.5 - 5 / 6)


def test_run_keeps_the_best_scored_candidate(tmp_path, tiny_policy_dir, tiny_reward_dir):
    args = BestOfNArguments(
        policy=tiny_policy_dir,
        reward_model=tiny_reward_dir,
        dataset_split="test",
        max_prompts=3,
        n=3,
        max_new_tokens=5,
        batch_size=9,
        output_dir=str(tmp_path / "bon"),
    )
    summary = main(args)
    assert summary["prompts"] == 3 and summary["gain"] >= 0
    path = tmp_path / "bon" / "best_of_n.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        best = row["rewards"].index(max(row["rewards"]))
        assert row["completion"][0]["content"] == row["candidates"][best]
        assert row["messages"][-1] == row["completion"][0]
    assert len(load_contract(str(path), "sft")) == 3
