"""`plumb align dpo` on a tiny model: trains, evaluates, saves; the reference log-probs are reused from disk."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from align.dpo import config_types, main
from plumb.config import parse_config
from plumb.models import load_policy


@pytest.fixture(scope="module")
def prefs(tmp_path_factory):
    """16 pairs from the shipped preference set, so each run stays small."""
    from plumb.data import builtin_path

    path = tmp_path_factory.mktemp("prefs") / "prefs.jsonl"
    path.write_text("".join(builtin_path("prefs", "train").read_text().splitlines(keepends=True)[:16]))
    return str(path)


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
            "96",
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


def test_two_steps_train_evaluate_and_reload(tmp_path, tiny_policy_dir, prefs):
    before = AutoModelForCausalLM.from_pretrained(tiny_policy_dir).state_dict()
    metrics = main(*dpo_args(tmp_path / "out", tiny_policy_dir, prefs))
    assert {"train_loss", "eval_loss", "eval_rewards/accuracies", "eval_rewards/margins"} <= set(metrics)
    assert 0.0 <= metrics["eval_rewards/accuracies"] <= 1.0
    model, _ = load_policy(str(tmp_path / "out"))
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items() if k in before)
    card = (tmp_path / "out" / "README.md").read_text()
    assert prefs in card and "DPOTrainer" in card
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["train_loss"] == pytest.approx(
        metrics["train_loss"]
    )


def test_reference_log_probs_are_computed_once_and_reused(tmp_path, tiny_policy_dir, prefs, monkeypatch):
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
    main(*dpo_args(tmp_path / "first", tiny_policy_dir, prefs, *lora))
    first = len(calls)
    assert first > 0
    # A sweep: another beta, loss, LoRA rank and output directory need the same reference log-probs.
    main(
        *dpo_args(
            tmp_path / "second", tiny_policy_dir, prefs, *lora, "--beta", "0.5", "--loss_type", "ipo", "--lora_r", "8"
        )
    )
    assert len(calls) == first, "the second run recomputed reference log-probs"
    assert (tmp_path / "second" / "adapter_config.json").is_file()


def test_ranking_data_expands_to_pairs(tmp_path, tiny_policy_dir):
    def msgs(role, text):
        return [{"role": role, "content": text}]

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
    metrics = main(*dpo_args(tmp_path / "out", tiny_policy_dir, str(path)))
    assert "eval_rewards/accuracies" in metrics
