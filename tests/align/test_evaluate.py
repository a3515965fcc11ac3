"""`plumb align eval`: win rate, its intervals, the length-matched rate, rewards and KL, each against a worked value."""

import json
import math

import numpy as np
import pytest

from align.evaluate import (
    PolicyEvalArguments,
    comparison_report,
    kl_estimate,
    load_prompts,
    main,
    similar_length,
    token_kl,
    win_rate,
)
from plumb.data import load_records
from plumb.task_metrics import text_metrics
from tests.support.worked import assistant_nll, kl_along_response, score_alone


def bootstrap_by_hand(values, *, samples: int, seed: int) -> list[float]:
    """The percentile bootstrap of the mean: `samples` resamples of len(values) indices, 2.5% and 97.5% quantiles."""
    values = np.asarray(values, float)
    picks = np.random.default_rng(seed).integers(0, len(values), size=(samples, len(values)))
    return np.quantile(values[picks].mean(axis=1), [0.025, 0.975]).tolist()


def test_win_rate_counts_ties_half():
    # policy beats, ties and loses: 1 + 0.5 + 0 over three prompts
    assert win_rate([3.0, 1.0, 2.0], [1.0, 1.0, 5.0]).tolist() == [1.0, 0.5, 0.0]


def test_prompts_from_conversations_drop_the_answer():
    from plumb.data import load_records

    prompts = load_prompts("builtin:instruct", "test", limit=5)
    conversations = [row["messages"] for row in load_records("builtin:instruct", "test")][:5]
    assert prompts == [messages[:-1] for messages in conversations]
    assert all(messages[-1]["role"] == "assistant" for messages in conversations)


def test_similar_length_keeps_pairs_within_the_tolerance_of_the_longer():
    # 4 vs 5 chars: |1| <= 0.2 * 5; 10 vs 2: |8| > 0.2 * 10; 3 vs 3: equal; 6 vs 4: |2| > 0.2 * 6 = 1.2;
    # 10 vs 8: |2| <= 0.2 * 10, exactly on the tolerance
    assert similar_length(
        ["aaaa", "a" * 10, "abc", "a" * 6, "a" * 10], ["aaaaa", "aa", "xyz", "a" * 4, "a" * 8]
    ).tolist() == [
        True,
        False,
        True,
        False,
        True,
    ]


def test_report_figures_and_intervals_by_hand():
    responses = {"policy": ["aaaa", "a" * 10, "abc", "a" * 6], "reference": ["aaaaa", "aa", "xyz", "a" * 4]}
    policy, reference = [1.0, 0.0, 2.0, 3.0], [0.0, 0.0, 3.0, 1.0]
    report = comparison_report(policy, reference, responses, kl=0.25, samples=200, seed=3)
    # wins per prompt: 1, 0.5 (tie), 0, 1 -> 2.5 / 4; similar length: prompts 0 and 2 -> (1 + 0) / 2
    wins = [1.0, 0.5, 0.0, 1.0]
    assert report["prompts"] == 4 and report["win_rate"] == 0.625 and report["kl_to_reference"] == 0.25
    assert report["win_rate_ci"] == pytest.approx(bootstrap_by_hand(wins, samples=200, seed=3))
    assert (report["win_rate_length_matched"], report["length_matched_prompts"]) == (0.5, 2)
    assert report["win_rate_length_matched_ci"] == pytest.approx(bootstrap_by_hand([1.0, 0.0], samples=200, seed=3))
    assert (report["policy_reward"], report["reference_reward"]) == (6 / 4, 4 / 4)
    assert report["policy_reward_ci"] == pytest.approx(bootstrap_by_hand(policy, samples=200, seed=3))
    assert report["reference_reward_ci"] == pytest.approx(bootstrap_by_hand(reference, samples=200, seed=3))
    assert (report["policy_mean_length"], report["reference_mean_length"]) == (
        (4 + 10 + 3 + 6) / 4,
        (5 + 2 + 3 + 4) / 4,
    )
    low, high = report["win_rate_ci"]
    assert 0.0 <= low < report["win_rate"] < high <= 1.0


def test_report_of_a_policy_that_always_wins_or_never_matches_length():
    # Every resample of all-wins has mean 1: the interval is the point. No pair of similar length: no matched rate.
    responses = {"policy": ["a" * 10, "b" * 20], "reference": ["a", "b"]}
    report = comparison_report([2.0, 5.0], [1.0, -1.0], responses, kl=0.0, samples=50, seed=0)
    assert report["win_rate"] == 1.0 and report["win_rate_ci"] == [1.0, 1.0]
    assert report["length_matched_prompts"] == 0 and report["win_rate_length_matched"] is None
    assert report["win_rate_length_matched_ci"] is None


def test_token_kl_is_the_sum_over_the_response_of_the_exact_next_token_kl(tiny_policy_dir, perturbed_policy_dir):
    from transformers import AutoModelForCausalLM

    from plumb.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_policy_dir)
    policy = AutoModelForCausalLM.from_pretrained(tiny_policy_dir).eval()
    reference = AutoModelForCausalLM.from_pretrained(perturbed_policy_dir).eval()
    prompts = [[{"role": "user", "content": "Hi"}], [{"role": "user", "content": "Name a colour."}]] * 2
    responses = ["Hello there", "Bye", "", "Blue, or green."]
    expected = [kl_along_response(policy, reference, tokenizer, p, r) for p, r in zip(prompts, responses)]
    assert expected[2] == 0.0 and all(value > 1e-4 for i, value in enumerate(expected) if i != 2)
    assert token_kl(policy, reference, tokenizer, prompts, responses) == pytest.approx(expected, rel=1e-4)
    # KL is not symmetric: the direction is policy || reference
    backwards = [kl_along_response(reference, policy, tokenizer, p, r) for p, r in zip(prompts, responses)]
    assert backwards != pytest.approx(expected, rel=1e-3)
    # Identical models: zero on every response
    assert token_kl(policy, policy, tokenizer, prompts, responses).tolist() == pytest.approx([0.0] * 4, abs=1e-6)
    # kl_estimate loads both specs and averages over the responses
    assert kl_estimate(tiny_policy_dir, perturbed_policy_dir, prompts, responses) == pytest.approx(
        np.mean(expected), rel=1e-4
    )


def test_policy_against_another_reference_every_figure_by_hand(
    tmp_path, tiny_policy_dir, perturbed_policy_dir, judge_dirs
):
    from transformers import AutoModelForCausalLM

    from plumb.models import load_tokenizer
    from reward.score import load_reward_model

    args = PolicyEvalArguments(
        policy=tiny_policy_dir,
        reference=perturbed_policy_dir,
        judge=",".join(judge_dirs),
        max_prompts=6,
        max_new_tokens=6,
        do_sample=True,  # greedy, the random policies both answer newlines only
        batch_size=3,
        bootstrap_samples=100,
        seed=1,
        output_dir=str(tmp_path / "eval"),
        to_campaign=str(tmp_path / "ab.jsonl"),
    )
    report = main(args)

    # What each policy answered, as the raters' file records it (raw text, policy first)
    prompts = load_prompts("builtin:instruct", "test", limit=6)
    rows = [json.loads(line) for line in (tmp_path / "ab.jsonl").read_text().splitlines()]
    assert [row["prompt"] for row in rows] == prompts
    answers = {
        role: [row["candidates"][k]["completion"][0]["content"] for row in rows]
        for k, role in enumerate(("policy", "reference"))
    }
    assert answers["policy"] != answers["reference"]

    # The judge: each response scored alone by each judge model, averaged over the two
    judges = [load_reward_model(path) for path in judge_dirs]
    scores = {
        role: np.array(
            [
                np.mean([score_alone(j, p + [{"role": "assistant", "content": t}]) for j in judges])
                for p, t in zip(prompts, texts)
            ]
        )
        for role, texts in answers.items()
    }
    wins = np.where(scores["policy"] > scores["reference"], 1.0, 0.0)
    wins[scores["policy"] == scores["reference"]] = 0.5
    assert report["prompts"] == 6
    assert report["win_rate"] == pytest.approx(wins.mean())
    assert report["win_rate_ci"] == pytest.approx(bootstrap_by_hand(wins, samples=100, seed=1))
    assert report["policy_reward"] == pytest.approx(scores["policy"].mean(), abs=1e-5)
    assert report["reference_reward"] == pytest.approx(scores["reference"].mean(), abs=1e-5)

    lengths = {role: np.array([len(t) for t in texts], float) for role, texts in answers.items()}
    matched = np.abs(lengths["policy"] - lengths["reference"]) <= 0.2 * np.maximum(*lengths.values())
    assert report["length_matched_prompts"] == matched.sum()
    if matched.any():
        assert report["win_rate_length_matched"] == pytest.approx(wins[matched].mean())
    assert report["policy_mean_length"] == pytest.approx(lengths["policy"].mean())

    # KL(policy || reference) along the policy's own responses, averaged over prompts
    tokenizer = load_tokenizer(tiny_policy_dir)
    policy = AutoModelForCausalLM.from_pretrained(tiny_policy_dir).eval()
    reference = AutoModelForCausalLM.from_pretrained(perturbed_policy_dir).eval()
    kl = np.mean([kl_along_response(policy, reference, tokenizer, p, t) for p, t in zip(prompts, answers["policy"])])
    assert kl > 1e-4 and report["kl_to_reference"] == pytest.approx(kl, rel=1e-4)

    # The prompts are conversations: their last answers are references, and each policy gets the task metrics
    conversations = [{"messages": row["messages"]} for row in load_records("builtin:instruct", "test")][:6]
    references = [row["messages"][-1]["content"] for row in conversations]
    for role, model in (("policy", policy), ("reference", reference)):
        figures = report["task_metrics"][role]
        total, count = assistant_nll(model, tokenizer, conversations)  # the references' tokens under this model
        assert figures["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-4), role
        again = text_metrics(answers[role], references, names=["rouge_l", "bleu"], samples=100, seed=1)
        assert (figures["rouge_l"], figures["bleu"]) == pytest.approx((again["rouge_l"], again["bleu"])), role
    assert report["task_metrics"]["policy"]["perplexity"] != pytest.approx(
        report["task_metrics"]["reference"]["perplexity"], rel=1e-3
    )
    assert (tmp_path / "eval" / "task_metrics.png").stat().st_size > 0
    assert json.loads((tmp_path / "eval" / "report.json").read_text()) == report


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
    # Greedy decoding: identical responses, identical rewards, every prompt a tie, the interval the point 0.5.
    assert report["win_rate"] == 0.5 and report["win_rate_ci"] == [0.5, 0.5]
    assert report["kl_to_reference"] == pytest.approx(0.0, abs=1e-6)
    assert report["policy_reward"] == pytest.approx(report["reference_reward"])
    assert report["length_matched_prompts"] == 4 and report["win_rate_length_matched"] == 0.5
    assert json.loads((tmp_path / "eval" / "report.json").read_text()) == report
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
