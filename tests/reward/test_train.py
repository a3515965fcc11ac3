"""`plumb reward train` on tiny models: trains, saves a folder that scores alone, evaluates, refuses bad data."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from plumb.config import ConfigError
from plumb.data import DataError
from reward.score import load_reward_model, score_conversations
from reward.train import main, resume_argument
from tests.reward.conftest import reward_train_args


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
    assert {"train_loss", "eval_accuracy", "eval_ece", "eval_length_baseline_accuracy", "train_truncated_pairs"} <= set(
        metrics
    )
    report = json.loads((trained_reward_dir / "eval_report.json").read_text())
    assert report["pairs"] == 57 and set(report["by_group"]) == {"rude", "unhelpful", "wrong"}
    assert (trained_reward_dir / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert (trained_reward_dir / "plumb_config.yaml").is_file()
    card = (trained_reward_dir / "README.md").read_text()
    assert "builtin:prefs" in card and "length_baseline_accuracy" in card


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
    main(
        *reward_train_args(tmp_path / "out", tiny_policy_dir, *lora, "--dataset_name", str(data), "--test_size", "0.25")
    )
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


def test_bad_data_is_an_error_naming_the_row(tmp_path, tiny_reward_dir):
    rows = [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}] * 3 + [
        {"prompt": "Hi", "chosen": "", "rejected": "No."}
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError, match=r"row 3: field 'chosen': the response is empty"):
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


def test_resume_argument():
    assert resume_argument(None) is None and resume_argument("false") is None
    assert resume_argument("last") is True and resume_argument("out/checkpoint-2") == "out/checkpoint-2"
