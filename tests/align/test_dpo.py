"""`plumb align dpo` on a tiny model: the held-out implicit-reward figures against log-prob ratios worked out here,
the reference log-probs reused from disk (and still right), ranking data expanded to its pairs."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

import align.dpo
from align.dpo import config_types, load_preferences, main
from plumb.config import parse_config
from plumb.data import DataError
from plumb.models import load_policy, load_tokenizer
from tests.support.worked import completion_log_prob

TOPICS = ["a colour", "a fruit", "a planet", "a metal", "an ocean", "a river", "a tree", "a bird", "a month", "a dance"]
ANSWERS = ["Blue.", "Apple.", "Mars.", "Iron.", "The Pacific.", "The Nile.", "Oak.", "Robin.", "May.", "Tango."]


def msgs(role, text):
    return [{"role": role, "content": text}]


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    """Short conversational pairs with their own test split (4 pairs), so the held-out set is known here."""
    folder = tmp_path_factory.mktemp("pairs")
    rows = [
        {
            "prompt": msgs("user", f"Name {topic}."),
            "chosen": msgs("assistant", answer),
            "rejected": msgs("assistant", no),
        }
        for topic, answer, no in zip(TOPICS, ANSWERS, ["No.", "I won't.", "Ask later.", "Hmm", "?"] * 2)
    ]
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows[:6]))
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows[6:]))
    return folder


def dpo_args(out_dir, model_dir, data, *flags):
    return parse_config(
        config_types(),
        [
            "--model_name_or_path",
            model_dir,
            "--output_dir",
            str(out_dir),
            "--max_steps",
            "2",
            "--dataset_name",
            data,
            "--test_size",
            "0.25",
            "--precompute_ref_batch_size",
            "16",
            "--per_device_train_batch_size",
            "2",
            "--per_device_eval_batch_size",
            "16",
            "--max_length",
            "256",
            "--learning_rate",
            "1e-2",
            "--report_to",
            "none",
            "--save_strategy",
            "no",
            "--logging_steps",
            "1",
            "--seed",
            "0",
            *flags,
        ],
    )


def expected_eval(policy, reference, tokenizer, rows, beta: float) -> dict:
    """DPO's held-out figures by hand: r = beta * (log p_policy(y|x) - log p_ref(y|x)) for chosen and rejected."""
    policy, reference = policy.eval(), reference.eval()

    def rewards(column):
        return np.array(
            [
                beta
                * (
                    completion_log_prob(policy, tokenizer, row["prompt"], row[column])
                    - completion_log_prob(reference, tokenizer, row["prompt"], row[column])
                )
                for row in rows
            ]
        )

    chosen, rejected = rewards("chosen"), rewards("rejected")
    return {
        "eval_rewards/chosen": chosen.mean(),
        "eval_rewards/rejected": rejected.mean(),
        "eval_rewards/margins": (chosen - rejected).mean(),
        "eval_rewards/accuracies": (chosen > rejected).mean(),
        "sigmoid_loss": float(np.mean(np.log1p(np.exp(-(chosen - rejected))))),  # -log sigmoid(margin)
    }


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("reference", ["starting policy", "separate reference"])
def test_held_out_implicit_rewards_match_log_prob_ratios(
    tmp_path, tiny_policy_dir, perturbed_policy_dir, pairs_dir, reference
):
    separate = reference == "separate reference"
    flags = ["--beta", "0.5"] + (["--ref_model_name_or_path", perturbed_policy_dir] if separate else [])
    before = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    metrics = main(*dpo_args(tmp_path / "out", tiny_policy_dir, str(pairs_dir), *flags))

    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert any(not torch.equal(before.state_dict()[k], v) for k, v in trained.state_dict().items())
    ref_model = AutoModelForCausalLM.from_pretrained(perturbed_policy_dir) if separate else before
    expected = expected_eval(
        trained, ref_model, load_tokenizer(tiny_policy_dir), read_rows(pairs_dir / "test.jsonl"), beta=0.5
    )
    assert abs(expected["eval_rewards/margins"]) > 1e-3, "the trained policy should have moved from its reference"
    for key in ("eval_rewards/chosen", "eval_rewards/rejected", "eval_rewards/margins"):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-3, abs=1e-4), key
    assert metrics["eval_rewards/accuracies"] == expected["eval_rewards/accuracies"]
    assert metrics["eval_loss"] == pytest.approx(expected["sigmoid_loss"], rel=1e-3, abs=1e-4)

    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved == metrics and np.isfinite(saved["train_loss"])
    card = (tmp_path / "out" / "README.md").read_text()
    assert str(pairs_dir) in card and "DPOTrainer" in card and "beta 0.5" in card


def test_reference_log_probs_are_computed_once_reused_and_right(
    tmp_path, tiny_policy_dir, pairs_dir, plumb_home, monkeypatch
):
    from trl import DPOTrainer

    calls = []
    original = DPOTrainer.compute_ref_log_probs
    monkeypatch.setattr(
        DPOTrainer, "compute_ref_log_probs", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    lora = [
        "--use_peft",
        "true",
        "--lora_r",
        "4",
        "--lora_target_modules",
        "q_proj",
        "v_proj",
        "--precompute_ref_log_probs",
        "true",
    ]
    first_metrics = main(*dpo_args(tmp_path / "first", tiny_policy_dir, str(pairs_dir), *lora))
    first = len(calls)
    assert first > 0
    # A sweep: another beta, loss, LoRA rank and output directory need the same reference log-probs.
    second_metrics = main(
        *dpo_args(
            tmp_path / "second",
            tiny_policy_dir,
            str(pairs_dir),
            *lora,
            "--beta",
            "0.5",
            "--loss_type",
            "ipo",
            "--lora_r",
            "8",
        )
    )
    assert len(calls) == first, "the second run recomputed reference log-probs"
    assert (tmp_path / "second" / "adapter_config.json").is_file()

    # The reused log-probs are the reference's (the base, adapter off): the implicit rewards still come out right
    reference = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    tokenizer = load_tokenizer(tiny_policy_dir)
    rows = read_rows(pairs_dir / "test.jsonl")
    for folder, metrics, beta in (("first", first_metrics, 0.1), ("second", second_metrics, 0.5)):
        policy, _ = load_policy(str(tmp_path / folder), merge_adapter=True)
        expected = expected_eval(policy, reference, tokenizer, rows, beta=beta)
        # The comparison below means something only if training moved the policy away from the reference. Each
        # answer's own reward says so; their margin can nearly cancel on a random tiny model (5.7e-5 seen).
        moved = max(abs(expected["eval_rewards/chosen"]), abs(expected["eval_rewards/rejected"]))
        assert moved > 1e-4, "the adapter should have moved the policy"
        for key in ("eval_rewards/chosen", "eval_rewards/rejected", "eval_rewards/margins"):
            assert metrics[key] == pytest.approx(expected[key], rel=1e-3, abs=1e-5), (folder, key)
        assert metrics["eval_rewards/accuracies"] == expected["eval_rewards/accuracies"]


def test_ranking_data_expands_to_its_pairs(tmp_path, tiny_policy_dir):
    rows = [
        {
            "prompt": msgs("user", f"Count to {i}"),
            "ranks": [1, 2, 2],
            "completions": [
                msgs("assistant", " ".join(map(str, range(1, i + 2)))),
                msgs("assistant", "no"),
                msgs("assistant", "maybe"),
            ],
        }
        for i in range(10)
    ]
    path = tmp_path / "ranks.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    args = dpo_args(tmp_path / "out", tiny_policy_dir, str(path))

    # Rank 1 beats both rank-2 answers; the two rank-2 answers tie, which gives no pair: 2 pairs per prompt
    train, test = load_preferences(args[0], seed=0)
    expected = {
        (row["prompt"][0]["content"], row["completions"][0][0]["content"], row["completions"][k][0]["content"])
        for row in rows
        for k in (1, 2)
    }
    found = [
        (pair["prompt"][0]["content"], pair["chosen"][0]["content"], pair["rejected"][0]["content"])
        for split in (train, test)
        for pair in split
    ]
    assert len(found) == 20 and set(found) == expected
    train_prompts, test_prompts = ({pair["prompt"][0]["content"] for pair in split} for split in (train, test))
    assert not train_prompts & test_prompts  # a prompt's pairs stay on one side

    metrics = main(*args)
    assert 0 < len(test) < 20 and metrics["eval_rewards/accuracies"] in {k / len(test) for k in range(len(test) + 1)}


def test_bad_data_fails_before_the_models_load(tmp_path, tiny_policy_dir, monkeypatch):
    data = tmp_path / "pairs.jsonl"
    rows = [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}, {"prompt": "Hi", "chosen": "Hello!"}]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the data was checked")

    monkeypatch.setattr(align.dpo, "load_policy", no_model)
    with pytest.raises(DataError, match="line 2"):
        main(*dpo_args(tmp_path / "out", tiny_policy_dir, str(data)))
