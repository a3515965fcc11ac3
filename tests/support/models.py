"""Tiny random models with real tokenizers, built in seconds: a 2-layer Llama policy and a 2-layer BERT reward model."""

import contextlib


def _seeded(seed: int | None):
    """Torch's RNG at `seed` inside the block, the global RNG untouched after it; no seeding when `seed` is None."""
    import torch

    if seed is None:
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(torch.random.fork_rng(devices=[]))
    torch.manual_seed(seed)
    return stack


def save_tiny_policy(path, tokenizer, *, seed: int | None = None) -> str:
    """Save a 2-layer random Llama (tied embeddings) with `tokenizer` (SmolLM2's) into `path`; returns the path."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with _seeded(seed):
        model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def save_tiny_reward(path, *, seed: int | None = None, **config) -> str:
    """Save a 2-layer random BERT sequence classifier (one reward logit) with MiniLM's tokenizer into `path`.

    `config` overrides BertConfig keys (e.g. `initializer_range=0.5` for scores that spread from text to text).
    """
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from plumb.models import default_reward_dir

    tokenizer = AutoTokenizer.from_pretrained(default_reward_dir())
    bert = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
        **config,
    )
    with _seeded(seed):
        model = BertForSequenceClassification(bert)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
