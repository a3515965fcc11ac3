"""Golden-value fixtures: tiny models built under a fixed seed, fixed data, and the check against stored references.

The session fixtures of tests/conftest.py build their tiny models from whatever the global RNG
holds at that moment, so their weights change with the order tests run in. Golden values need
weights that are the same on every run: the models here are built inside a forked RNG seeded
with GOLDEN_SEED, with the same tokenizers (SmolLM2's, MiniLM's). The data is written here too,
not read from the shipped assets, so only a change in the trainers' maths moves the figures.

The check against the references is tests/support/golden.py.
"""

import json
from pathlib import Path

import pytest

from plumb.models import load_tokenizer
from tests.support.golden import GOLDEN_SEED, seed_everything
from tests.support.models import save_tiny_policy, save_tiny_reward


@pytest.fixture(scope="session")
def golden_policy_dir(tmp_path_factory, default_policy_dir):
    """A 2-layer Llama (as tests/conftest.py's tiny policy) with weights fixed by GOLDEN_SEED, SmolLM2's tokenizer."""
    tokenizer = load_tokenizer(default_policy_dir)
    return save_tiny_policy(tmp_path_factory.mktemp("golden_policy"), tokenizer, seed=GOLDEN_SEED)


@pytest.fixture(scope="session")
def golden_reward_dir(tmp_path_factory):
    """A 2-layer BERT reward model (one logit) with weights fixed by GOLDEN_SEED and MiniLM's tokenizer."""
    return save_tiny_reward(tmp_path_factory.mktemp("golden_reward"), seed=GOLDEN_SEED)


def _write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


@pytest.fixture(scope="session")
def golden_data(tmp_path_factory) -> dict[str, str]:
    """Fixed small datasets as JSONL files: conversations (sft), pairs with a margin (reward, dpo), prompts (online)."""
    folder = tmp_path_factory.mktemp("golden_data")
    numbers = [(a, b) for a in range(2, 6) for b in range(3, 7)]  # 16 distinct prompts
    conversations = [
        {"messages": _user(f"What is {a} plus {b}?") + _assistant(f"{a} plus {b} is {a + b}.")} for a, b in numbers
    ]
    pairs = [
        {
            "prompt": _user(f"What is {a} times {b}?"),
            "chosen": _assistant(f"{a} times {b} is {a * b}."),
            "rejected": _assistant(f"I am not sure, maybe {a * b + 1}? Numbers are hard."),
            "margin": float(1 + (a + b) % 3),
        }
        for a, b in numbers
    ]
    prompts = [{"prompt": _user(f"Name a word that rhymes with {word}.")} for word in ("cat", "sun", "tree", "moon")]
    return {
        "sft": _write_jsonl(folder / "conversations.jsonl", conversations),
        "pairs": _write_jsonl(folder / "pairs.jsonl", pairs),
        "prompts": _write_jsonl(folder / "prompts.jsonl", prompts),
    }


@pytest.fixture
def log_history(monkeypatch) -> list[list[dict]]:
    """The `state.log_history` of every Trainer that trains during the test, in order (filled as each finishes)."""
    from transformers import Trainer

    histories: list[list[dict]] = []
    original = Trainer.train

    def train(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        finally:
            histories.append(list(self.state.log_history))

    monkeypatch.setattr(Trainer, "train", train)
    seed_everything()
    return histories
