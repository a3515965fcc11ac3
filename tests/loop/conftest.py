"""Fixtures of the loop tests: a tiny loop (2-layer models, a handful of prompts) written as a real config file."""

import json

import pytest
import yaml

TOPICS = [
    "rain",
    "bread",
    "chess",
    "rivers",
    "owls",
    "tea",
    "glass",
    "maps",
    "bees",
    "snow",
    "clocks",
    "ships",
    "salt",
    "kites",
    "moss",
    "iron",
    "wool",
    "caves",
    "ink",
    "figs",
]


def write_jsonl(path, rows):
    """Write rows as JSON Lines; returns the path."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def user(text):
    """A one-turn prompt."""
    return [{"role": "user", "content": text}]


@pytest.fixture
def tiny_loop(tmp_path, tiny_policy_dir, tiny_reward_dir, plumb_home):
    """A function writing a loop config (tiny models, 6 prompts a round, 3 samples each) with overrides: its path."""
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    write_jsonl(
        prompts / "prompts-train.jsonl",
        [{"prompt": user(f"Tell me about {t}."), "prompt_id": f"p-{t}"} for t in TOPICS[:14]],
    )
    write_jsonl(
        prompts / "prompts-test.jsonl",
        [{"prompt": user(f"Why do people like {t}?"), "prompt_id": f"t-{t}"} for t in TOPICS[14:]],
    )
    gold = tmp_path / "gold"
    gold.mkdir()
    pairs = [
        {
            "prompt": user(f"Is {t} nice?"),
            "chosen": [{"role": "assistant", "content": f"Yes, {t} is nice."}],
            "rejected": [{"role": "assistant", "content": "No."}],
        }
        for t in TOPICS
    ]
    write_jsonl(gold / "gold-train.jsonl", pairs[:16])
    write_jsonl(gold / "gold-test.jsonl", pairs[16:])

    def write(**overrides):
        training = {"report_to": "none", "per_device_eval_batch_size": 8, "logging_steps": 1, "seed": 0}
        config = {
            "output_dir": str(tmp_path / "run"),
            "rounds": 2,
            "sft_policy": tiny_policy_dir,
            "seed": 0,
            "prompts": str(prompts),
            "prompts_per_round": 6,
            "eval_prompts": 5,
            "samples_per_prompt": 3,
            "generation": {"max_new_tokens": 8, "do_sample": True, "temperature": 1.0},
            "generation_batch_size": 8,
            "campaign": {"kind": "pairwise", "raters_per_task": 2, "max_raters_per_task": 3},
            "simulated_raters": 3,
            "simulated": {"temperature": 0.05, "position_bias": 0.1},
            "test_size": 0.34,
            "reward": {
                **training,
                "num_train_epochs": 1,
                "per_device_train_batch_size": 4,
                "max_length": 64,
                "bootstrap_samples": 50,
                "dtype": "float32",
            },
            "dpo": {
                **training,
                "max_steps": 2,
                "per_device_train_batch_size": 2,
                "max_length": 64,
                "learning_rate": 0.05,
                "use_peft": True,
                "lora_r": 4,
                "lora_alpha": 8,
                "lora_target_modules": "all-linear",
                "dtype": "float32",
                "eval_strategy": "no",
            },
            "gold_backbone": tiny_reward_dir,
            "gold_pairs": str(gold),
            "gold_settings": {"max_length": 64, "freeze_layers": 0, "num_train_epochs": 1, "bootstrap_samples": 50},
            "eval": {"max_new_tokens": 8, "batch_size": 8, "bootstrap_samples": 100},
        }
        config.update(overrides)
        path = tmp_path / "loop.yaml"
        path.write_text("# plumb loop run --config loop.yaml\n" + yaml.safe_dump(config, sort_keys=False))
        return path

    return write
