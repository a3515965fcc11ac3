"""PPO, RLOO and GRPO side by side: the same prompts, the same reward model, the same budget of generated tokens.

Every run generates `completions` completions of up to `tokens` tokens per rollout for `steps` rollouts (PPO: that
many prompts, one completion each; RLOO and GRPO: a quarter as many prompts, 4 completions each), from the same
policy and prompts against the same reward model, with one learning rate and sampling temperature for all and each
algorithm's shipped demo settings otherwise (so RLOO and GRPO, which reuse a rollout for `num_iterations` optimizer
steps, take that many more steps) and no guards.
Each run is a fresh process (its peak memory is its own). Then each trained policy and the starting one answer the
same held-out prompts (greedy), and the figures are:

- reward gain: the training reward model's mean score of the trained policy's answers minus the starting one's;
- KL: KL(trained || start) per answer, exact over the vocabulary along the trained policy's answers (nats);
- win rate: how often a judge reward model never used in training (default: the loop's gold judge, trained on
  Anthropic hh-rlhf pairs) prefers the trained policy's answer to the starting one's (ties count half);
- seconds per training step, peak memory (GPU: max allocated; CPU: the process's max resident set).

Means over seeds, with their spread (sd), printed side by side, then as one JSON line, last.

    python bench/online_rl.py --reward_model outputs/reward-demo [--judge DIR] [--seeds 0 1 2] [--steps 8]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ALGORITHMS = ("ppo", "rloo", "grpo")
REPO = Path(__file__).resolve().parents[1]
GUARDS = ("max_kl", "max_mean_length", "min_entropy", "max_reward_disagreement")


def run_config(algorithm: str, args, seed: int, output_dir: Path) -> dict:
    """The keys of one training run: the algorithm's demo config, with the bench's shared budget and no guards."""
    demo = yaml.safe_load((REPO / "configs" / "align" / f"{algorithm}-demo.yaml").read_text())
    keys = {
        **demo,
        **dict.fromkeys(GUARDS),
        "model_name_or_path": args.policy,
        "reward_model": args.reward_model,
        "dataset_name": args.dataset,
        "max_prompts": args.prompts,
        "max_completion_length": args.tokens,
        # One learning rate and sampling temperature for all: the demos' differ, which would decide the comparison.
        "learning_rate": args.learning_rate,
        "temperature": args.temperature,
        "max_steps": args.steps,
        "seed": seed,
        "output_dir": str(output_dir),
        "report_to": ["none"],
        "save_strategy": "steps",
        "save_steps": args.steps,  # one checkpoint, at the end: its trainer_state.json holds the log
        "log_completions": False,
        "merge_adapter": True,
    }
    if algorithm == "ppo":
        keys.update(
            per_device_train_batch_size=args.completions // 2, gradient_accumulation_steps=1, num_mini_batches=2
        )
    else:  # a rollout every num_iterations steps (TRL's generate_every with one step per generation)
        steps = args.steps * demo.get("num_iterations", 1)
        keys.update(algorithm=algorithm, per_device_train_batch_size=args.completions, num_generations=4)
        keys.update(max_steps=steps, save_steps=steps, gradient_accumulation_steps=1)
    keys.pop("num_completions_to_print", None)
    return keys


def child(config_path: str, result_path: str) -> None:
    """Train one run (in this fresh process) and write its metrics, log and peak memory."""
    import torch

    from align import online
    from plumb.config import parse_config

    argv = ["--config", config_path]
    metrics = online.main(*parse_config(online.config_types(argv), argv))
    if torch.cuda.is_available():
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    output_dir = Path(yaml.safe_load(Path(config_path).read_text())["output_dir"])
    state = next(output_dir.glob("checkpoint-*/trainer_state.json"))
    history = [e for e in json.loads(state.read_text())["log_history"] if "reward" in e]
    Path(result_path).write_text(json.dumps({"metrics": metrics, "peak_memory_mb": peak_mb, "history": history}))


def train(algorithm: str, args, seed: int, folder: Path) -> dict:
    """Run one training in a fresh process; returns what `child` wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path, result_path = folder / "config.yaml", folder / "result.json"
    config_path.write_text(yaml.safe_dump(run_config(algorithm, args, seed, folder / "policy"), sort_keys=False))
    command = [sys.executable, __file__, "--child", str(config_path), str(result_path)]
    with (folder / "train.log").open("w") as log:
        subprocess.run(
            command, check=True, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)}
        )
    return json.loads(result_path.read_text())


def answers(policy_spec: str, prompts, tokens: int) -> list[str]:
    """Greedy answers of a policy to the held-out prompts."""
    from plumb.generation import generate_all, load_generator

    return generate_all(load_generator(policy_spec, {"max_new_tokens": tokens, "do_sample": False}), prompts)


def kl_to_start(policy_spec: str, start_spec: str, prompts, responses) -> float:
    """Mean KL(trained || start) per answer along the trained policy's answers (align.evaluate's exact estimate)."""
    from align.evaluate import kl_estimate

    return kl_estimate(policy_spec, start_spec, prompts, responses)


def summary(values: list[float]) -> dict:
    """Mean and sample sd over seeds."""
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}


def plot(runs: dict[str, list[dict]], table: dict, path: Path, title: str) -> None:
    """The training reward per rollout (mean over seeds, range shaded) and the held-out reward gain and win rate per
    algorithm (mean, sd as error bars), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (curve, gain, wins) = plt.subplots(1, 3, figsize=(13, 4.2), gridspec_kw={"width_ratios": [2, 1, 1]})
    for algorithm, seeds in runs.items():
        rewards = np.array([run["train_rewards"] for run in seeds])
        rollouts = np.arange(1, rewards.shape[1] + 1)
        (line,) = curve.plot(rollouts, rewards.mean(0), marker="o", label=algorithm)
        curve.fill_between(rollouts, rewards.min(0), rewards.max(0), color=line.get_color(), alpha=0.15)
    curve.set_xlabel("rollout")
    curve.set_ylabel("training reward (mean over the rollout)")
    curve.legend(fontsize=8)
    names = list(table)
    panels = ((gain, "reward_gain", "held-out reward gain"), (wins, "win_rate", "judge win rate"))
    for axes, figure_name, label in panels:
        means = [table[a][figure_name]["mean"] for a in names]
        spreads = [table[a][figure_name]["sd"] for a in names]
        axes.bar(names, means, yerr=spreads, capsize=4, color=[f"C{i}" for i in range(len(names))])
        axes.set_title(label, fontsize=10)
    wins.axhline(0.5, color="grey", ls=":", lw=1)
    gain.axhline(0.0, color="grey", ls=":", lw=1)
    for axes in (curve, gain, wins):
        axes.grid(alpha=0.3)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    """Train every algorithm with every seed, evaluate, print the table, then one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "RESULT"), help=argparse.SUPPRESS)
    parser.add_argument("--policy", default="default", help="starting policy (any spec load_policy takes)")
    parser.add_argument("--reward_model", default="outputs/reward-demo", help="the reward model every run climbs")
    parser.add_argument("--judge", default=None, help="judge reward model (default: the loop's gold judge)")
    parser.add_argument("--dataset", default="builtin:instruct", help="prompts: train split to train, test to judge")
    parser.add_argument("--prompts", type=int, default=32, help="training prompts")
    parser.add_argument("--eval_prompts", type=int, default=24, help="held-out prompts answered and judged")
    parser.add_argument("--completions", type=int, default=8, help="completions per rollout (a multiple of 4)")
    parser.add_argument("--tokens", type=int, default=32, help="longest completion, in tokens (training and eval)")
    parser.add_argument("--steps", type=int, default=8, help="rollouts per run")
    parser.add_argument("--learning_rate", type=float, default=2e-4, help="every algorithm's learning rate (LoRA)")
    parser.add_argument("--temperature", type=float, default=0.7, help="every algorithm's sampling temperature")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--output_dir", default="outputs/bench/online_rl")
    parser.add_argument("--plot", default="docs/online_rl.png", help="where the PNG goes")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from align.evaluate import load_prompts, win_rate
    from align.rewards import RewardModels

    started = time.perf_counter()
    if args.judge is None:
        from loop.gold_judge import gold_judge

        args.judge = str(gold_judge())
    out = Path(args.output_dir)
    prompts = load_prompts(args.dataset, "test", limit=args.eval_prompts)
    reward, judge = RewardModels(args.reward_model), RewardModels(args.judge)

    def scores(texts):
        conversations = [p + [{"role": "assistant", "content": t}] for p, t in zip(prompts, texts)]
        return reward.score(conversations).mean(axis=0), judge.score(conversations).mean(axis=0)

    start_texts = answers(args.policy, prompts, args.tokens)
    start_reward, start_judge = scores(start_texts)
    runs = {algorithm: [] for algorithm in args.algorithms}
    for algorithm in args.algorithms:
        for seed in args.seeds:
            folder = out / f"{algorithm}-seed{seed}"
            result = train(algorithm, args, seed, folder)
            policy = str(folder / "policy")
            texts = answers(policy, prompts, args.tokens)
            trained_reward, trained_judge = scores(texts)
            history = result["history"]
            runs[algorithm].append(
                {
                    "seed": seed,
                    "reward_gain": float(trained_reward.mean() - start_reward.mean()),
                    "kl": kl_to_start(policy, args.policy, prompts, texts),
                    "win_rate": float(win_rate(trained_judge, start_judge).mean()),
                    "s_per_step": result["metrics"]["train_runtime_s"] / result["metrics"]["steps"],
                    "s_per_rollout": result["metrics"]["train_runtime_s"] / len(history),
                    "peak_memory_mb": result["peak_memory_mb"],
                    "generated_tokens": sum(e["completions/mean_length"] * args.completions for e in history),
                    # One entry per rollout: TRL's trainers log a rollout's figures at the first step that uses it.
                    "train_rewards": [e["reward"] for e in history],
                    "answer_chars": float(np.mean([len(t) for t in texts])),
                }
            )
            print(f"{algorithm} seed {seed}: {json.dumps(runs[algorithm][-1])}", flush=True)

    figures = ("reward_gain", "kl", "win_rate", "s_per_step", "s_per_rollout", "peak_memory_mb", "generated_tokens")
    table = {a: {f: summary([r[f] for r in rs]) for f in figures} for a, rs in runs.items()}
    print(
        f"\nSame budget: {args.steps} rollouts x {args.completions} completions x <= {args.tokens} tokens; "
        f"{args.prompts} training prompts, {len(prompts)} judged; learning rate {args.learning_rate}, temperature "
        f"{args.temperature}; seeds {args.seeds}; judge {args.judge}"
    )
    start_chars = np.mean([len(t) for t in start_texts])
    print(f"starting policy: mean reward {start_reward.mean():.3f}, answers of {start_chars:.0f} chars")
    print(f"{'':22}" + "".join(f"{a:>22}" for a in table))
    for figure in figures:
        cells = "".join(f"{table[a][figure]['mean']:>13.4g} ± {table[a][figure]['sd']:<6.2g}" for a in table)
        print(f"{figure:22}{cells}")
    budget = f"{args.steps} rollouts x {args.completions} completions x <= {args.tokens} tokens, seeds {args.seeds}"
    plot(runs, table, Path(args.plot), f"PPO, RLOO and GRPO at the same budget: {budget}")
    print(f"plot: {args.plot}")
    wall = time.perf_counter() - started
    print(
        json.dumps(
            {
                "budget": {
                    "rollouts": args.steps,
                    "completions_per_rollout": args.completions,
                    "max_tokens": args.tokens,
                    "learning_rate": args.learning_rate,
                    "temperature": args.temperature,
                    "seeds": args.seeds,
                },
                "algorithms": table,
                "runs": runs,
                "wall_s": round(wall, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
