"""`plumb align best-of-n`: selection maths by hand, and a run whose every reward and choice is checked by rescoring."""

import json

import numpy as np
import pytest

from align.best_of_n import BestOfNArguments, best_of_n_summary, main, select_best
from plumb.data import load_contract
from tests.support.worked import score_alone


def test_selection_and_gain_by_hand():
    rewards = [[1.0, 3.0, 2.0], [0.0, 0.0, -1.0], [-2.0, -1.0, -0.5]]
    assert select_best(rewards).tolist() == [1, 0, 2]  # the first of a tie; the last when it is the best
    summary = best_of_n_summary(rewards)
    # one sample (any of the n, on average): (1 + 3 + 2 + 0 + 0 - 1 - 2 - 1 - 0.5) / 9 = 1.5 / 9
    # the best of n: (3 + 0 - 0.5) / 3
    assert (summary["prompts"], summary["n"]) == (3, 3)
    assert summary["mean_reward_one_sample"] == pytest.approx(1.5 / 9)
    assert summary["mean_reward_best"] == pytest.approx(2.5 / 3)
    assert summary["gain"] == pytest.approx(2.5 / 3 - 1.5 / 9)


def test_run_keeps_the_candidate_the_judges_score_highest(tmp_path, tiny_policy_dir, judge_dirs):
    from align.evaluate import load_prompts
    from reward.score import load_reward_model

    args = BestOfNArguments(
        policy=tiny_policy_dir,
        reward_model=",".join(judge_dirs),
        dataset_split="test",
        max_prompts=3,
        n=3,
        max_new_tokens=5,
        batch_size=4,  # batches cut across prompts: the rewards must still land on their own candidates
        output_dir=str(tmp_path / "bon"),
    )
    summary = main(args)
    path = tmp_path / "bon" / "best_of_n.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    prompts = load_prompts("builtin:instruct", "test", limit=3)
    assert [row["prompt"] for row in rows] == prompts and all(len(row["candidates"]) == 3 for row in rows)

    # Every candidate rescored on its own by each judge, averaged over the judges
    judges = [load_reward_model(p) for p in judge_dirs]
    scores = np.array(
        [
            [
                np.mean([score_alone(j, p + [{"role": "assistant", "content": c}]) for j in judges])
                for c in row["candidates"]
            ]
            for p, row in zip(prompts, rows)
        ]
    )
    assert np.ptp(scores, axis=1).min() > 1e-3, "candidates too alike for the choice to mean anything"
    assert np.array([row["rewards"] for row in rows]) == pytest.approx(scores, abs=1e-5)
    for row, best in zip(rows, scores.argmax(axis=1)):
        assert row["completion"] == [{"role": "assistant", "content": row["candidates"][best]}]
        assert row["messages"] == row["prompt"] + row["completion"]
    assert summary["mean_reward_one_sample"] == pytest.approx(scores.mean(), abs=1e-5)
    assert summary["mean_reward_best"] == pytest.approx(scores.max(axis=1).mean(), abs=1e-5)
    assert summary["gain"] == pytest.approx(scores.max(axis=1).mean() - scores.mean(), abs=1e-5)
    assert json.loads((tmp_path / "bon" / "summary.json").read_text()) == summary
    assert len(load_contract(str(path), "sft")) == 3
