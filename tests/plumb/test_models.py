"""Model loading: the offline defaults, local directories, and clear errors for what cannot be loaded."""

import logging
import os

import pytest
import torch

from plumb.models import (
    ModelLoadError,
    default_policy_gguf,
    gguf_cache_path,
    load_policy,
    load_reward_backbone,
    load_tokenizer,
)


def generate(model, tokenizer, text: str, max_new_tokens: int = 12) -> str:
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


@pytest.mark.slow
def test_default_policy_loads_offline_and_answers(default_policy_dir):
    model, tokenizer = load_policy("default")
    assert model.config.num_hidden_layers == 30 and model.dtype == torch.float32
    assert "paris" in generate(model, tokenizer, "What is the capital of France?", 20).lower()
    # The dequantized copy is a plain safetensors directory in the Plumb data directory.
    cache = gguf_cache_path(default_policy_gguf())
    assert str(cache).startswith(os.environ["PLUMB_HOME"])
    assert (cache / "model.safetensors").is_file() and "quantization_config" not in (cache / "config.json").read_text()


def test_tiny_policy_from_a_directory_generates(tiny_policy_dir):
    model, tokenizer = load_policy(tiny_policy_dir)
    assert tokenizer.pad_token_id == model.generation_config.pad_token_id is not None
    # Greedy decoding by hand: the argmax of the logits, one token at a time, must give the same answer.
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hello"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    ids = inputs["input_ids"]
    with torch.no_grad():
        for _ in range(12):
            ids = torch.cat([ids, model(ids).logits[:, -1:].argmax(-1)], dim=1)
    by_hand = tokenizer.decode(ids[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert generate(model, tokenizer, "Hello") == by_hand and by_hand


def test_default_reward_backbone_gets_template_and_eos():
    model, tokenizer = load_reward_backbone("default")
    assert tokenizer.eos_token == tokenizer.sep_token == "[SEP]"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], tokenize=False
    )
    assert "user: Hi" in text and "assistant: Hello!" in text
    batch = tokenizer(["a good answer", "a bad answer"], return_tensors="pt", padding=True)
    assert model(**batch).logits.shape == (2, 1)


def test_tiny_reward_model_from_a_directory(tiny_reward_dir):
    model, tokenizer = load_reward_backbone(tiny_reward_dir)
    assert model.config.num_labels == 1 and tokenizer.chat_template


def test_a_new_reward_head_is_reported_as_expected_not_as_missing(tiny_policy_dir, tiny_reward_dir, caplog):
    caplog.set_level(logging.INFO)
    load_reward_backbone(tiny_policy_dir)  # a causal LM: its sequence-classification head is new
    assert not [r for r in caplog.records if "MISSING" in r.getMessage()]
    (said,) = [r for r in caplog.records if "reward head" in r.getMessage()]
    assert said.levelno == logging.INFO and "score.weight" in said.getMessage()
    caplog.clear()
    load_reward_backbone(tiny_reward_dir)  # a trained reward model: nothing new
    assert not [r for r in caplog.records if "reward head" in r.getMessage() or "MISSING" in r.getMessage()]


def test_unreachable_hub_id_says_how_to_use_a_local_directory():
    with pytest.raises(ModelLoadError, match="local-dir DIR") as error:
        load_policy("no-such-org/no-such-model")
    assert "no-such-org/no-such-model" in str(error.value)
    with pytest.raises(ModelLoadError, match="local-dir"):
        load_tokenizer("no-such-org/no-such-model")


def test_missing_directory_and_gguf_are_named(tmp_path):
    with pytest.raises(ModelLoadError, match="directory not found"):
        load_policy(str(tmp_path / "nowhere"))
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        load_policy(str(tmp_path / "model.gguf"))
