"""Golden-value fixtures: tiny models built under a fixed seed, fixed data, and the check against stored references.

The session fixtures of tests/conftest.py build their tiny models from whatever the global RNG
holds at that moment, so their weights change with the order tests run in. Golden values need
weights that are the same on every run: the models here are built inside a forked RNG seeded
with GOLDEN_SEED, with the same tokenizers (SmolLM2's, MiniLM's). The data is written here too,
not read from the shipped assets, so only a change in the trainers' maths moves the figures.

Regenerate the references on purpose with `PLUMB_UPDATE_GOLDEN=1 pytest tests/golden`; without it
a missing reference fails the test.
"""

import json
import math
import os
import platform
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from plumb.models import default_reward_dir, load_tokenizer

REFERENCES = Path(__file__).parent / "references"
UPDATE_ENV = "PLUMB_UPDATE_GOLDEN"
GOLDEN_SEED = 1234
# CPU float32 repeats bit for bit run to run at a fixed thread count. With 2 threads instead of 1, reductions are
# ordered differently: the reward run moved by up to 5e-7 absolute, 2e-5 relative; the others did not move at all.
# RTOL 1e-3 leaves 50x room over that, and still fails on every change of a hyper-parameter or formula tried: a 10%
# learning-rate change moves the loss by 1.6e-3 or more and the grad norm by 1e-2 or more by step 2. ATOL covers
# figures that are zero up to rounding (RLOO's loss is about 1e-7 at one PPO epoch per batch; DPO's margins at step 1
# are exactly 0).
RTOL = 1e-3
ATOL = 1e-5


def seed_everything(seed: int = GOLDEN_SEED) -> None:
    """Python, numpy and torch RNGs to `seed` (the trainers reseed from their own `seed` too)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_with_seed(factory, seed: int = GOLDEN_SEED):
    """Build a model from `factory()` with torch's RNG at `seed`, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


@pytest.fixture(scope="session")
def golden_policy_dir(tmp_path_factory, default_policy_dir):
    """A 2-layer Llama (as tests/conftest.py's tiny policy) with weights fixed by GOLDEN_SEED, SmolLM2's tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = load_tokenizer(default_policy_dir)
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
    path = tmp_path_factory.mktemp("golden_policy")
    build_with_seed(lambda: LlamaForCausalLM(config)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def golden_reward_dir(tmp_path_factory):
    """A 2-layer BERT reward model (one logit) with weights fixed by GOLDEN_SEED and MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(default_reward_dir())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    path = tmp_path_factory.mktemp("golden_reward")
    build_with_seed(lambda: BertForSequenceClassification(config)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


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


def step_series(history: list[dict], keys: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-step values of `keys` from the training logs (the final summary entry, with train_runtime, left out)."""
    steps = [entry for entry in history if "train_runtime" not in entry and "step" in entry]
    series = {key: [float(entry[key]) for entry in steps if key in entry] for key in keys}
    missing = [key for key, values in series.items() if not values]
    assert not missing, f"not logged: {missing}; logged keys: {sorted({k for e in steps for k in e})}"
    return series


def versions() -> dict[str, str]:
    import transformers
    import trl

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "python": platform.python_version(),
    }


def check_golden(name: str, measured: dict[str, list[float]], *, config: dict) -> None:
    """Compare `measured` with references/<name>.json within RTOL/ATOL, or rewrite it when PLUMB_UPDATE_GOLDEN=1."""
    path = REFERENCES / f"{name}.json"
    if os.environ.get(UPDATE_ENV) == "1":
        REFERENCES.mkdir(exist_ok=True)
        record = {"config": config, "versions": versions(), "rtol": RTOL, "atol": ATOL, "values": measured}
        path.write_text(json.dumps(record, indent=2) + "\n")
        return
    if not path.is_file():
        pytest.fail(f"no golden reference {path}: generate it on purpose with {UPDATE_ENV}=1 and commit it")
    reference = json.loads(path.read_text())
    expected = reference["values"]
    problems = []
    for key in sorted(set(expected) | set(measured)):
        want, got = expected.get(key), measured.get(key)
        if want is None or got is None or len(want) != len(got):
            problems.append(f"{key}: expected {want}, got {got}")
            continue
        for step, (w, g) in enumerate(zip(want, got), start=1):
            if not (math.isfinite(g) and abs(g - w) <= ATOL + RTOL * abs(w)):
                problems.append(f"{key} step {step}: expected {w:.6g}, got {g:.6g} (rel. diff {relative(g, w):.2e})")
    if problems:
        made_with = reference.get("versions")
        note = "" if made_with == versions() else f" (reference made with {made_with}, now {versions()})"
        if reference.get("config") != config:
            note += f"; the test's own settings changed too (reference: {reference.get('config')}, now: {config})"
        pytest.fail(
            f"{name}: the first steps moved from the golden values, rtol {RTOL} atol {ATOL}{note}. If the change is "
            f"intended, regenerate with {UPDATE_ENV}=1 and commit the reference.\n  " + "\n  ".join(problems)
        )


def relative(got: float, want: float) -> float:
    return abs(got - want) / max(abs(want), 1e-12)
