"""Best-of-n: sample n responses per prompt, keep the one the reward model scores highest.

The baseline every RLHF paper compares with, and a dataset for rejection-sampling SFT:
the output has `messages` (prompt + best response, ready for `plumb sft train`), the
`prompt`/`completion` pair, and every candidate with its reward.

    plumb align best-of-n --config configs/align/best-of-n-demo.yaml
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plumb.config import parse_config, save_resolved_config

logger = logging.getLogger(__name__)


@dataclass
class BestOfNArguments:
    """The policy, the reward model, the prompts and the sampling settings."""

    policy: str = field(default="default", metadata={"help": "The policy to sample from (any spec load_policy takes)."})
    reward_model: str = field(
        default="outputs/reward-demo",
        metadata={"help": "Reward model directory (or several, comma-separated, averaged) that picks the best."},
    )
    dataset_name: str = field(
        default="builtin:instruct",
        metadata={"help": "Prompts: prompts data (`prompt`), or conversations (`messages`, the last answer dropped)."},
    )
    dataset_split: str = field(default="train", metadata={"help": "Split to read the prompts from."})
    max_prompts: int = field(default=0, metadata={"help": "Use at most this many prompts (0: all)."})
    n: int = field(default=4, metadata={"help": "Responses sampled per prompt."})
    max_new_tokens: int = field(default=96, metadata={"help": "Longest response to generate."})
    temperature: float = field(default=0.8, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass."})
    batch_size: int = field(default=8, metadata={"help": "Sequences generated (and scored) at a time."})
    seed: int = field(default=0, metadata={"help": "Seed for sampling."})
    output_dir: str = field(default="outputs/best-of-n", metadata={"help": "Where the dataset and summary go."})


def config_types() -> tuple:
    """The dataclasses a `plumb align best-of-n` config fills."""
    return (BestOfNArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then sample and select."""
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def main(args: BestOfNArguments) -> dict:
    """Sample, score, keep the best; writes the dataset (JSONL) and summary.json, returns the summary."""
    import torch

    from align.evaluate import load_prompts
    from align.rewards import RewardModels
    from plumb.data import rows_to_dataset
    from plumb.generation import generate_all, load_generator

    torch.manual_seed(args.seed)
    prompts = load_prompts(args.dataset_name, args.dataset_split, limit=args.max_prompts)
    generation = {
        "max_new_tokens": args.max_new_tokens,
        "do_sample": True,
        "temperature": args.temperature,
        "top_p": args.top_p,
    }
    repeated = [prompt for prompt in prompts for _ in range(args.n)]
    responses = generate_all(
        load_generator(args.policy, generation),
        repeated,
        batch_size=args.batch_size,
        desc=f"Sampling {args.n} per prompt",
    )
    conversations = [p + [{"role": "assistant", "content": r}] for p, r in zip(repeated, responses)]
    rewards = RewardModels(args.reward_model, batch_size=args.batch_size).score(conversations, progress=True)
    rewards = rewards.mean(axis=0).reshape(len(prompts), args.n)
    candidates = np.array(responses, dtype=object).reshape(len(prompts), args.n)

    best = select_best(rewards)
    rows = [
        {
            "prompt": prompt,
            "completion": [{"role": "assistant", "content": candidates[i, best[i]]}],
            "messages": prompt + [{"role": "assistant", "content": candidates[i, best[i]]}],
            "candidates": list(candidates[i]),
            "rewards": rewards[i].tolist(),
        }
        for i, prompt in enumerate(prompts)
    ]
    summary = best_of_n_summary(rewards)

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows_to_dataset(rows, source="best-of-n").to_json(str(output_dir / "best_of_n.jsonl"))
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    save_resolved_config(output_dir, args)
    logger.info(
        "Best-of-%d over %d prompts: mean reward %.3f (one sample) -> %.3f (best), written to %s",
        args.n,
        len(prompts),
        summary["mean_reward_one_sample"],
        summary["mean_reward_best"],
        output_dir,
    )
    return summary


def select_best(rewards) -> np.ndarray:
    """(prompts,) index of the highest reward in each row of `rewards` (prompts, n); the first on a tie."""
    return np.argmax(np.asarray(rewards), axis=1)


def best_of_n_summary(rewards) -> dict:
    """What best-of-n bought: the mean reward of one sample vs of the best of n, and the gain."""
    rewards = np.asarray(rewards)
    one, best = float(rewards.mean()), float(rewards.max(axis=1).mean())
    return {
        "prompts": int(rewards.shape[0]),
        "n": int(rewards.shape[1]),
        "mean_reward_one_sample": one,
        "mean_reward_best": best,
        "gain": best - one,
    }
