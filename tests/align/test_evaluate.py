"""`plumb align eval`: win rate, rewards, KL and samples on tiny models."""

import json

import numpy as np
import pytest

from align.evaluate import PolicyEvalArguments, load_prompts, main, win_rate


def test_win_rate_counts_ties_half():
    # policy beats, ties and loses: 1 + 0.5 + 0 over three prompts
    assert win_rate([3.0, 1.0, 2.0], [1.0, 1.0, 5.0]).tolist() == [1.0, 0.5, 0.0]


def test_prompts_from_conversations_drop_the_answer():
    prompts = load_prompts("builtin:instruct", "test", limit=5)
    assert len(prompts) == 5 and all(p[-1]["role"] == "user" for p in prompts)


def test_a_policy_against_itself_ties_with_zero_kl(tmp_path, tiny_policy_dir, tiny_reward_dir):
    args = PolicyEvalArguments(policy=tiny_policy_dir, reference=tiny_policy_dir, judge=tiny_reward_dir,
                               max_prompts=4, max_new_tokens=6, batch_size=4, bootstrap_samples=50,
                               output_dir=str(tmp_path / "eval"), to_campaign=str(tmp_path / "ab.jsonl"))
    report = main(args)
    # Greedy decoding: identical responses, identical rewards, every prompt a tie.
    assert report["win_rate"] == 0.5 and report["kl_to_reference"] == pytest.approx(0.0, abs=1e-6)
    assert report["policy_reward"] == pytest.approx(report["reference_reward"])
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert saved["prompts"] == 4 and np.isfinite(saved["policy_reward"])
    assert (tmp_path / "eval" / "rewards.png").stat().st_size > 0
    assert (tmp_path / "eval" / "samples.md").read_text().count("\n") == 2 + 4
    rows = [json.loads(line) for line in (tmp_path / "ab.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and [c["policy"] for c in rows[0]["candidates"]] == [
        "policy:tiny_policy0", "reference:tiny_policy0"]


def test_to_campaign_rows_import_as_pairwise_tasks(tmp_path):
    from align.evaluate import write_campaign_rows
    from collect import import_prompts
    from collect.init import main as init_main

    prompts = [[{"role": "user", "content": f"Question {i}?"}] for i in range(3)]
    responses = {"policy": ["a0", "a1", "a2"], "reference": ["b0", "b1", "b2"]}
    rows = write_campaign_rows(tmp_path / "ab.jsonl", prompts, responses, {"policy": "dpo", "reference": "sft"})
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    campaign = tmp_path / "ab.yaml"
    campaign.write_text("name: human-ab\nkind: pairwise\n")
    counts = import_prompts.main(str(campaign), source=str(rows), db=db)
    assert counts["prompts"] == 3 and counts["candidates"] == 6 and counts["tasks"] == 3
