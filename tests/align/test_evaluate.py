"""`plumb align eval`: win rate, rewards, KL and samples on tiny models."""

import json

import numpy as np
import pytest

from align.evaluate import PolicyEvalArguments, comparison_report, load_prompts, main, similar_length, win_rate


def test_win_rate_counts_ties_half():
    # policy beats, ties and loses: 1 + 0.5 + 0 over three prompts
    assert win_rate([3.0, 1.0, 2.0], [1.0, 1.0, 5.0]).tolist() == [1.0, 0.5, 0.0]


def test_prompts_from_conversations_drop_the_answer():
    prompts = load_prompts("builtin:instruct", "test", limit=5)
    assert len(prompts) == 5 and all(p[-1]["role"] == "user" for p in prompts)


def test_a_policy_against_itself_ties_with_zero_kl(tmp_path, tiny_policy_dir, tiny_reward_dir):
    args = PolicyEvalArguments(
        policy=tiny_policy_dir,
        reference=tiny_policy_dir,
        judge=tiny_reward_dir,
        max_prompts=4,
        max_new_tokens=6,
        batch_size=4,
        bootstrap_samples=50,
        output_dir=str(tmp_path / "eval"),
        to_campaign=str(tmp_path / "ab.jsonl"),
    )
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
        "policy:tiny_policy0",
        "reference:tiny_policy0",
    ]


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


def test_similar_length_keeps_pairs_within_the_tolerance_of_the_longer():
    # 4 vs 5 chars: |1| <= 0.2 * 5; 10 vs 2: |8| > 0.2 * 10; 3 vs 3: equal; 6 vs 4: |2| > 0.2 * 6 = 1.2
    assert similar_length(["aaaa", "a" * 10, "abc", "a" * 6], ["aaaaa", "aa", "xyz", "a" * 4]).tolist() == [
        True,
        False,
        True,
        False,
    ]


def test_the_length_matched_win_rate_counts_only_similar_pairs():
    responses = {"policy": ["aaaa", "a" * 10, "abc", "a" * 6], "reference": ["aaaaa", "aa", "xyz", "a" * 4]}
    report = comparison_report([1.0, 0.0, 2.0, 3.0], [0.0, 0.0, 3.0, 1.0], responses, kl=0.0, samples=200, seed=0)
    # wins per prompt: 1, 0.5, 0, 1 -> 0.625 overall; similar length: prompts 0 and 2 -> (1 + 0) / 2
    assert report["win_rate"] == 0.625
    assert (report["win_rate_length_matched"], report["length_matched_prompts"]) == (0.5, 2)
    assert report["policy_mean_length"] == (4 + 10 + 3 + 6) / 4


def test_token_kl_is_the_exact_kl_of_next_token_distributions_along_the_response(tiny_policy_dir):
    import torch
    from torch.distributions import Categorical, kl_divergence
    from transformers import AutoModelForCausalLM

    from align.evaluate import token_kl
    from plumb.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_policy_dir)
    policy = AutoModelForCausalLM.from_pretrained(tiny_policy_dir).eval()
    reference = AutoModelForCausalLM.from_pretrained(tiny_policy_dir).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for weight in reference.parameters():
            weight.add_(0.05 * torch.randn_like(weight))
    prompts, responses = [[{"role": "user", "content": "Hi"}]] * 2, ["Hello there", "Bye"]
    values = token_kl(policy, reference, tokenizer, prompts, responses)

    # The same sum, by hand: one KL per response token between the two models' next-token distributions.
    expected = []
    for prompt, response in zip(prompts, responses):
        context = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=False)
        answer = tokenizer(response, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([context + answer])
        with torch.no_grad():
            p, q = (m(input_ids=ids).logits[0] for m in (policy, reference))
        expected.append(
            sum(
                kl_divergence(Categorical(logits=p[t]), Categorical(logits=q[t])).item()
                for t in range(len(context) - 1, len(context) + len(answer) - 1)
            )
        )
    assert values == pytest.approx(expected, rel=1e-4)
    assert all(v > 0 for v in values)
    assert token_kl(policy, policy, tokenizer, prompts, responses) == pytest.approx([0.0, 0.0], abs=1e-6)
