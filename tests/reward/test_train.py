"""`plumb reward train` on tiny models: trains, saves a folder that scores alone, evaluates, refuses bad data."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from plumb.config import ConfigError
from plumb.data import DataError, load_records, rows_to_dataset, split_by_prompt
from reward import train as train_module
from reward.score import load_reward_model, score_conversations
from reward.train import main
from tests.support.reward import HandScorer, reward_train_args


def test_trained_folder_loads_and_scores_a_conversation_in_one_call(trained_reward_dir, tiny_reward_dir):
    before = AutoModelForSequenceClassification.from_pretrained(tiny_reward_dir).state_dict()
    model = AutoModelForSequenceClassification.from_pretrained(trained_reward_dir)
    after = model.state_dict()
    assert any(not torch.equal(before[name], after[name]) for name in before)

    tokenizer = AutoTokenizer.from_pretrained(trained_reward_dir)
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    inputs = tokenizer.apply_chat_template(conversation, return_dict=True, return_tensors="pt")
    reward = model(**inputs).logits
    assert reward.shape == (1, 1)
    # plain transformers feeds the head what Plumb trained and scores it on
    plumb_reward = score_conversations(load_reward_model(str(trained_reward_dir)), [conversation], progress=False)
    assert reward.item() == pytest.approx(plumb_reward[0], abs=1e-5)


def test_training_writes_metrics_report_diagram_card_and_config(trained_reward_dir):
    metrics = json.loads((trained_reward_dir / "metrics.json").read_text())
    report = json.loads((trained_reward_dir / "eval_report.json").read_text())
    # builtin:prefs has its own splits: 281 pairs to train on, its 57 test pairs held out
    assert metrics["train_pairs"] == 281 and metrics["eval_pairs"] == 57 and report["pairs"] == 57
    for key in ("accuracy", "accuracy_ci95", "ece", "length_baseline_accuracy", "reward_length_spearman"):
        assert metrics[f"eval_{key}"] == report[key], key
    assert set(report["by_group"]) == {"rude", "unhelpful", "wrong"}

    # the held-out accuracy is the saved model's, on the test split, each pair scored alone
    held_out = list(load_records("builtin:prefs", "test"))
    chosen, rejected = HandScorer(trained_reward_dir, max_length=64).pairs(held_out)
    slack = int((np.abs(chosen - rejected) < 1e-6).sum())  # batched and single scoring agree to ~1e-8
    assert metrics["eval_accuracy"] == pytest.approx(np.mean(chosen > rejected), abs=slack / 57 + 1e-12)
    assert report["mean_margin"] == pytest.approx(np.mean(chosen - rejected), abs=1e-6)

    # truncation counts: pairs with a side longer than max_length (64) tokens, counted here with the tokenizer
    tokenizer = AutoTokenizer.from_pretrained(trained_reward_dir)

    def too_long(rows):
        def length(conversation):
            return len(tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True)["input_ids"])

        return sum(max(length(r["prompt"] + r["chosen"]), length(r["prompt"] + r["rejected"])) > 64 for r in rows)

    train_cut, held_out_cut = too_long(load_records("builtin:prefs", "train")), too_long(held_out)
    assert train_cut > 0 and held_out_cut > 0
    assert metrics["train_truncated_pairs"] == train_cut and metrics["eval_truncated_pairs"] == held_out_cut
    assert metrics["train_truncated_share"] == pytest.approx(train_cut / 281)

    assert (trained_reward_dir / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert (trained_reward_dir / "plumb_config.yaml").is_file()
    card = (trained_reward_dir / "README.md").read_text()
    assert "builtin:prefs" in card and "length_baseline_accuracy" in card


@pytest.mark.parametrize("use_margin", [True, False])
def test_train_loss_is_the_bradley_terry_loss_of_the_pairs(tmp_path, tiny_reward_dir, use_margin):
    def message(role, text):
        return [{"role": role, "content": text}]

    rows = [
        {
            "prompt": message("user", question),
            "chosen": message("assistant", good),
            "rejected": message("assistant", bad),
            "margin": margin,
        }
        for question, good, bad, margin in [
            ("Capital of France?", "Paris.", "Lyon.", 3.0),
            ("Two plus two?", "Four.", "Five, I think.", 1.0),
            ("Say thanks.", "Thank you!", "No.", 0.0),
            ("A colour?", "Blue.", "Seven.", 2.0),
        ]
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    # one step on one batch of all four pairs: the reported loss is the loss before the step
    flags = ["--dataset_name", str(data), "--test_size", "0", "--max_steps", "1", "--per_device_train_batch_size", "4"]
    metrics = main(*reward_train_args(tmp_path / "out", tiny_reward_dir, *flags, "--use_margin", str(use_margin)))

    chosen, rejected = HandScorer(tiny_reward_dir, tmp_path / "out", max_length=64).pairs(rows)
    margins = np.array([r["margin"] for r in rows]) if use_margin else np.zeros(4)
    # Bradley-Terry with a margin: mean over pairs of -log sigmoid(r_chosen - r_rejected - margin)
    expected = np.mean(np.log1p(np.exp(-(chosen - rejected - margins))))
    assert metrics["train_loss"] == pytest.approx(expected, rel=1e-5)
    assert metrics["train_pairs"] == 4 and "eval_accuracy" not in metrics


def test_decoder_with_lora_saves_a_merged_sequence_classifier(tmp_path, tiny_policy_dir):
    lora = ["--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj", "v_proj"]
    rows = [
        {
            "prompt": [{"role": "user", "content": f"Say {i}"}],
            "chosen": [{"role": "assistant", "content": str(i)}],
            "rejected": [{"role": "assistant", "content": "no"}],
            "margin": 1.0,
        }
        for i in range(12)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    metrics = main(
        *reward_train_args(tmp_path / "out", tiny_policy_dir, *lora, "--dataset_name", str(data), "--test_size", "0.25")
    )
    # 12 pairs with 12 different prompts, a quarter held out: 3 evaluated, 9 trained on
    assert metrics["train_pairs"] == 9 and metrics["eval_pairs"] == 3
    report = json.loads((tmp_path / "out" / "eval_report.json").read_text())
    assert report["pairs"] == 3
    # ... and they are the prompts the split holds out (seed 0), scored alone by the merged model
    _, held_out = split_by_prompt(rows_to_dataset(rows), test_size=0.25, seed=0)
    chosen, rejected = HandScorer(tmp_path / "out", max_length=64).pairs(held_out)
    assert report["mean_margin"] == pytest.approx(np.mean(chosen - rejected), abs=1e-5)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out")
    assert type(model).__name__ == "LlamaForSequenceClassification" and model.config.num_labels == 1
    assert not (tmp_path / "out" / "adapter_config.json").exists()


def test_freezing_keeps_the_lower_layers(tmp_path, tiny_reward_dir):
    before = AutoModelForSequenceClassification.from_pretrained(tiny_reward_dir).state_dict()
    main(*reward_train_args(tmp_path / "out", tiny_reward_dir, "--freeze_layers", "1", "--test_size", "0"))
    after = AutoModelForSequenceClassification.from_pretrained(tmp_path / "out").state_dict()
    assert torch.equal(
        before["bert.encoder.layer.0.attention.self.query.weight"],
        after["bert.encoder.layer.0.attention.self.query.weight"],
    )
    assert not torch.equal(
        before["bert.encoder.layer.1.attention.self.query.weight"],
        after["bert.encoder.layer.1.attention.self.query.weight"],
    )


def test_bad_data_is_an_error_naming_the_line_before_the_model_loads(tmp_path, tiny_reward_dir, monkeypatch):
    rows = [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}] * 3 + [
        {"prompt": "Hi", "chosen": "", "rejected": "No."}
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr(train_module, "load_reward_backbone", no_model)
    with pytest.raises(DataError, match=r"line 4: field 'chosen': the response is empty"):
        main(*reward_train_args(tmp_path / "out", tiny_reward_dir, "--dataset_name", str(data)))


def test_early_stopping_needs_matching_eval_and_save(tmp_path, tiny_reward_dir):
    with pytest.raises(ConfigError, match="early_stopping_patience"):
        main(
            *reward_train_args(
                tmp_path / "out",
                tiny_reward_dir,
                "--early_stopping_patience",
                "1",
                "--eval_strategy",
                "steps",
                "--eval_steps",
                "1",
            )
        )
