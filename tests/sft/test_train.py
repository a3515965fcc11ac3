"""`plumb sft train` on a tiny model: trains, masks the prompt, saves, reloads; LoRA adapters and merging.

The reported figures (train loss, held-out loss and perplexity, before and after) are checked
against the same figures computed here from the model's own logits, one conversation at a time.
"""

import json
import logging
import math

import pytest
import torch
from transformers import AutoModelForCausalLM

import sft.train
from plumb.config import parse_config
from plumb.data import DataError, rows_to_dataset, split_by_prompt
from plumb.models import load_policy
from sft.train import config_types, main, perplexity
from tests.support.worked import assistant_nll

# Short conversations with different words, so a loss on one set of them is not the loss on another.
TRAIN = [
    ("Name a colour.", "Blue."),
    ("What is two plus two?", "Four."),
    ("Say hello in French.", "Bonjour!"),
    ("Which animal barks?", "A dog barks."),
    ("What do bees make?", "Honey, from nectar."),
    ("Spell cat backwards.", "tac"),
]
TEST = [
    ("What is the capital of Italy?", "Rome is the capital of Italy."),
    ("How many legs has a spider?", "Eight legs."),
    ("What colour is snow?", "White, mostly."),
]


def conversation(user: str, reply: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]}


def write_jsonl(path, rows) -> None:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")


def mean_nll(model, tokenizer, conversations) -> float:
    total, count = assistant_nll(model, tokenizer, conversations)
    return total / count


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
    inputs = tokenizer("Hi", return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert output.shape[1] > inputs["input_ids"].shape[1]  # it generated


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


@pytest.fixture(scope="module")
def sharp_policy_dir(tmp_path_factory, tiny_policy_dir):
    """The tiny policy drawn again from a fixed seed with larger weights (std 0.5 instead of 0.02).

    Its next-token probabilities are far from uniform, so the losses on different conversations differ
    clearly; the tiny policy's are all within a few hundredths of ln(vocabulary size).
    """
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_policy_dir)
    config.initializer_range = 0.5
    path = tmp_path_factory.mktemp("sharp_policy")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_policy_dir).save_pretrained(path)
    return str(path)


def test_reported_losses_are_the_models_own_on_the_held_out_split(tmp_path, sharp_policy_dir):
    data = tmp_path / "convos"
    data.mkdir()
    write_jsonl(data / "train.jsonl", [conversation(*pair) for pair in TRAIN])
    write_jsonl(data / "test.jsonl", [conversation(*pair) for pair in TEST])
    # One step on one batch of all six training conversations: the train loss is the loss before that step.
    flags = ["--dataset_name", str(data), "--max_steps", "1", "--per_device_train_batch_size", str(len(TRAIN))]
    metrics = main(*sft_args(tmp_path, sharp_policy_dir, *flags))

    initial, tokenizer = load_policy(sharp_policy_dir)
    trained, _ = load_policy(str(tmp_path / "out"))
    held_out = [conversation(*pair) for pair in TEST]
    before = mean_nll(initial, tokenizer, held_out)
    after = mean_nll(trained, tokenizer, held_out)
    on_train = mean_nll(initial, tokenizer, [conversation(*pair) for pair in TRAIN])
    # the three figures differ by far more than the tolerance, so none can stand in for another
    assert min(abs(before - after), abs(before - on_train), abs(after - on_train)) > 0.01

    assert metrics["eval_loss_before"] == pytest.approx(before, rel=1e-6)
    assert metrics["eval_loss"] == pytest.approx(after, rel=1e-6)
    assert metrics["perplexity_before"] == pytest.approx(math.exp(before), rel=1e-4)
    assert metrics["perplexity"] == pytest.approx(math.exp(after), rel=1e-4)
    assert metrics["train_loss"] == pytest.approx(on_train, rel=1e-6)
    # The end-of-training task metrics: the references' perplexity pooled over their tokens (not the mean of
    # per-conversation losses eval_loss is), with its interval; the text metrics of the trained policy's answers
    total, count = assistant_nll(trained, tokenizer, held_out)
    assert metrics["task/perplexity"] == pytest.approx(math.exp(total / count), rel=1e-4)
    assert metrics["task/reference_tokens"] == count and metrics["task/examples"] == len(TEST)
    low, high = metrics["task/perplexity_ci95"]
    assert low < metrics["task/perplexity"] < high
    assert {"task/rouge_l_ci95", "task/bleu_ci95", "task/exact_match_ci95"} <= set(metrics)
    assert metrics["task/exact_match_examples"] == 2  # two references of at most 5 words
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == metrics  # floats survive JSON exactly
    card = (tmp_path / "out" / "README.md").read_text()
    for key in ("eval_loss_before", "perplexity_before", "eval_loss", "perplexity", "train_loss"):
        assert f"| {key} | {metrics[key]:.4g} |" in card, key


def test_dataset_without_test_split_holds_out_a_share(tmp_path, sharp_policy_dir, caplog):
    rows = [conversation(f"Count to {i + 1}.", ", ".join(str(k) for k in range(1, i + 2))) for i in range(20)]
    data = tmp_path / "convos.jsonl"
    write_jsonl(data, rows)
    # 20 different prompts, test_size 0.25: 5 whole prompts held out, 15 trained on (one batch, one step)
    train, test = split_by_prompt(rows_to_dataset(rows), test_size=0.25, seed=0)
    assert (len(train), len(test)) == (15, 5)
    flags = ["--dataset_name", str(data), "--test_size", "0.25", "--max_steps", "1"]
    with caplog.at_level(logging.INFO, logger="sft.train"):
        metrics = main(*sft_args(tmp_path, sharp_policy_dir, *flags, "--per_device_train_batch_size", "15"))
    assert "SFT data: 15 conversations -> 15 assistant turns" in caplog.text

    model, tokenizer = load_policy(sharp_policy_dir)
    held_out, trained_on = mean_nll(model, tokenizer, list(test)), mean_nll(model, tokenizer, list(train))
    assert abs(held_out - trained_on) > 0.01
    assert metrics["eval_loss_before"] == pytest.approx(held_out, rel=1e-6)
    assert metrics["train_loss"] == pytest.approx(trained_on, rel=1e-6)


def test_perplexity_is_the_exponential_of_the_held_out_loss():
    assert perplexity({"eval_loss": math.log(4.0)}) == pytest.approx({"eval_loss": math.log(4.0), "perplexity": 4.0})
    assert perplexity({"eval_loss": 2.0}, suffix="_before") == {
        "eval_loss_before": 2.0,
        "perplexity_before": pytest.approx(7.389056, rel=1e-6),  # e^2
    }
    # a diverged loss is capped at exp(50) instead of overflowing to inf
    assert perplexity({"eval_loss": 1e4})["perplexity"] == pytest.approx(math.exp(50.0))


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
    assert metrics["perplexity_before"] == pytest.approx(math.exp(metrics["eval_loss_before"]))
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["eval_loss"]))
    model, tokenizer = load_policy(str(out))  # merged LoRA: a plain model
    assert type(model).__name__ == "LlamaForCausalLM"
    assert metrics["task/examples"] == 4 and metrics["task/rouge_l"] > 0  # the default policy answers in words
    assert list((out / "wandb").glob("offline-run-*")), "wandb offline run folder missing"
    assert list(out.rglob("events.out.tfevents.*")), "TensorBoard events missing"


def test_bad_data_fails_before_the_model_loads(tmp_path, tiny_policy_dir, monkeypatch):
    data = tmp_path / "chats.jsonl"
    write_jsonl(data, [conversation("Hi", "Hello!"), {"messages": [{"role": "user", "content": "Hi"}]}])

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the data was checked")

    monkeypatch.setattr(sft.train, "load_policy", no_model)
    with pytest.raises(DataError, match="line 2"):
        main(*sft_args(tmp_path, tiny_policy_dir, "--dataset_name", str(data)))
