"""`plumb sft train` on a tiny model: trains, masks the prompt, saves, reloads; LoRA adapters and merging."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from plumb.config import parse_config
from plumb.models import load_policy
from sft.train import config_types, main


def sft_args(tmp_path, model_dir, *flags):
    return parse_config(
        config_types(),
        [
            "--model_name_or_path",
            model_dir,
            "--output_dir",
            str(tmp_path / "out"),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "2",
            "--per_device_eval_batch_size",
            "8",
            "--max_length",
            "128",
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


def test_two_steps_change_the_weights_save_and_reload(tmp_path, tiny_policy_dir):
    before = AutoModelForCausalLM.from_pretrained(tiny_policy_dir).state_dict()
    metrics = main(*sft_args(tmp_path, tiny_policy_dir))
    out = tmp_path / "out"
    assert {"eval_loss_before", "perplexity_before", "eval_loss", "perplexity", "train_loss"} <= set(metrics)
    assert json.loads((out / "metrics.json").read_text())["perplexity"] == pytest.approx(metrics["perplexity"])
    model, tokenizer = load_policy(str(out))
    after = model.state_dict()
    assert any(not torch.equal(before[name], after[name]) for name in before)
    card = (out / "README.md").read_text()
    assert "builtin:instruct" in card and "perplexity" in card and tiny_policy_dir in card
    assert (out / "plumb_config.yaml").is_file()
    output = model.generate(**tokenizer("Hi", return_tensors="pt"), max_new_tokens=3, do_sample=False)
    assert output.shape[1] > 1


def test_only_assistant_tokens_carry_loss(tmp_path, tiny_policy_dir):
    from trl import SFTTrainer

    from plumb.data import load_records, messages_to_prompt_completion

    script, training, _ = sft_args(tmp_path, tiny_policy_dir)
    model, tokenizer = load_policy(tiny_policy_dir)
    rows = messages_to_prompt_completion(load_records("builtin:instruct").select(range(4)))
    trainer = SFTTrainer(model=model, args=training, train_dataset=rows, processing_class=tokenizer)
    example = trainer.train_dataset[0]
    trained = [t for t, label in zip(example["input_ids"], example["labels"]) if label != -100]
    assert 0 < len(trained) < len(example["input_ids"])
    assert rows[0]["completion"][0]["content"].strip() in tokenizer.decode(trained)
    assert rows[0]["prompt"][-1]["content"] not in tokenizer.decode(trained)


def test_lora_saves_an_adapter_that_reloads_and_can_be_merged(tmp_path, tiny_policy_dir):
    lora = ["--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj", "v_proj"]
    main(*sft_args(tmp_path, tiny_policy_dir, *lora, "--eval_before_train", "false"))
    out = tmp_path / "out"
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    adapter_model, _ = load_policy(str(out))
    assert type(adapter_model).__name__ == "PeftModelForCausalLM"
    merged, _ = load_policy(str(out), merge_adapter=True)
    assert type(merged).__name__ == "LlamaForCausalLM"

    merged_dir = tmp_path / "merged"
    main(*sft_args(merged_dir, tiny_policy_dir, *lora, "--merge_adapter", "true", "--eval_before_train", "false"))
    assert (merged_dir / "out" / "model.safetensors").is_file()


def test_dataset_without_test_split_holds_out_a_share(tmp_path, tiny_policy_dir):
    rows = [
        {"messages": [{"role": "user", "content": f"Say {i}"}, {"role": "assistant", "content": str(i)}]}
        for i in range(20)
    ]
    data = tmp_path / "convos.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows))
    metrics = main(*sft_args(tmp_path, tiny_policy_dir, "--dataset_name", str(data), "--test_size", "0.25"))
    assert "eval_loss" in metrics


@pytest.mark.slow
def test_demo_config_runs_on_the_default_model_with_tracking(tmp_path, default_policy_dir, monkeypatch):
    from pathlib import Path

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    from plumb.data import builtin_path

    demo = Path(__file__).resolve().parents[2] / "configs" / "sft" / "demo.yaml"
    small = tmp_path / "small"  # a few of the shipped conversations keep the default model's evaluation short
    small.mkdir()
    for split, rows in (("train", 8), ("test", 4)):
        lines = builtin_path("instruct", split).read_text().splitlines(keepends=True)[:rows]
        (small / f"{split}.jsonl").write_text("".join(lines))
    args = parse_config(
        config_types(),
        [
            "--config",
            str(demo),
            "--output_dir",
            str(tmp_path / "demo"),
            "--dataset_name",
            str(small),
            "--max_steps",
            "1",
        ],
    )
    metrics = main(*args)
    out = tmp_path / "demo"
    assert metrics["perplexity_before"] > 1 and metrics["perplexity"] > 1
    model, tokenizer = load_policy(str(out))  # merged LoRA: a plain model
    assert type(model).__name__ == "LlamaForCausalLM"
    assert list((out / "wandb").glob("offline-run-*")), "wandb offline run folder missing"
    assert list(out.rglob("events.out.tfevents.*")), "TensorBoard events missing"
