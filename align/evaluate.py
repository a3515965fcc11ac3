"""Evaluate a policy against its reference on held-out prompts, judged by a reward model.

Reports the win rate under the judge (ties count half; also among prompts whose two
responses are of similar length) and the mean rewards with bootstrap intervals,
KL(policy || reference) along the policy's own responses, mean response lengths, and
samples side by side. The judge should be a
reward model that was not used in training, or the policy is graded by what it gamed.

    plumb align eval --config configs/align/eval-demo.yaml
    plumb align eval --config configs/align/eval-demo.yaml --to_campaign outputs/ab.jsonl
    plumb collect import --campaign configs/collect/campaigns/demo.yaml --source outputs/ab.jsonl
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plumb import task_metrics
from plumb.cards import samples_table
from plumb.config import parse_config, save_resolved_config
from plumb.data import DataError, detect_kind, load_records

logger = logging.getLogger(__name__)


@dataclass
class PolicyEvalArguments:
    """The two policies, the judge, the prompts and the decoding settings."""

    policy: str = field(
        default="outputs/dpo-demo", metadata={"help": "The aligned policy (any spec load_policy takes)."}
    )
    reference: str = field(
        default="default", metadata={"help": "The policy to compare against, e.g. the SFT checkpoint."}
    )
    judge: str = field(
        default="outputs/reward-demo",
        metadata={
            "help": "Reward model directory (or several, comma-separated, averaged) that scores both; "
            "preferably one not used in training."
        },
    )
    dataset_name: str = field(
        default="builtin:instruct",
        metadata={"help": "Prompts: prompts data (`prompt`), or conversations (`messages`, the last answer dropped)."},
    )
    dataset_split: str = field(default="test", metadata={"help": "Split to read the prompts from."})
    max_prompts: int = field(default=40, metadata={"help": "Evaluate on at most this many prompts (0: all)."})
    max_new_tokens: int = field(default=96, metadata={"help": "Longest response to generate."})
    do_sample: bool = field(
        default=False, metadata={"help": "Sample (with temperature/top_p) instead of greedy decoding."}
    )
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature when do_sample."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass when do_sample."})
    batch_size: int = field(default=8, metadata={"help": "Prompts generated (and scored) at a time."})
    metrics: list[str] = field(
        default_factory=lambda: list(task_metrics.METRICS),
        metadata={
            "help": f"Task metrics against the reference answers, where the prompts come from conversations "
            f"(their last answer): any of {', '.join(task_metrics.METRICS)}."
        },
    )
    short_answer_words: int = field(
        default=5, metadata={"help": "Exact match is scored where the reference has at most this many words."}
    )
    bootstrap_samples: int = field(default=1000, metadata={"help": "Resamples for the confidence intervals."})
    seed: int = field(default=0, metadata={"help": "Seed for sampling and the bootstrap."})
    output_dir: str = field(
        default="outputs/align-eval", metadata={"help": "Where report.json, samples.md and the plot go."}
    )
    to_campaign: str | None = field(
        default=None,
        metadata={
            "help": "Also write the policy-vs-reference pairs as JSONL for `plumb collect import --source FILE`, "
            "so people can judge them (the human A/B test)."
        },
    )


def config_types() -> tuple:
    """The dataclasses a `plumb align eval` config fills."""
    return (PolicyEvalArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then evaluate."""
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def main(args: PolicyEvalArguments) -> dict:
    """Generate from both policies, judge, and write report.json, samples.md and rewards.png (and, where the prompts
    have reference answers, the task metrics of both policies and task_metrics.png)."""
    import torch

    from align.rewards import RewardModels
    from plumb.generation import generate_all, load_on_device, local_generator

    metrics = task_metrics.check_metrics(args.metrics)  # before anything loads
    torch.manual_seed(args.seed)
    prompts, references = load_prompts_and_references(args.dataset_name, args.dataset_split, limit=args.max_prompts)
    generation = {"max_new_tokens": args.max_new_tokens, "do_sample": args.do_sample}
    if args.do_sample:
        generation.update(temperature=args.temperature, top_p=args.top_p)

    # Responses from both policies, each loaded once for generation, KL and the reference answers' perplexity
    models, responses = {}, {}
    for name, spec in (("policy", args.policy), ("reference", args.reference)):
        models[name] = load_on_device(spec)
        responses[name] = generate_all(
            local_generator(*models[name], generation), prompts, batch_size=args.batch_size, desc=f"Generating ({name})"
        )

    # Judge: the mean over the judge models of each response's reward
    judge = RewardModels(args.judge, batch_size=args.batch_size)
    scores = {
        name: judge.score(
            [p + [{"role": "assistant", "content": t}] for p, t in zip(prompts, texts)], progress=True
        ).mean(axis=0)
        for name, texts in responses.items()
    }

    (policy, tokenizer), (reference, _) = models["policy"], models["reference"]
    kl = float(np.mean(token_kl(policy, reference, tokenizer, prompts, responses["policy"])))
    report = comparison_report(
        scores["policy"], scores["reference"], responses, kl=kl, samples=args.bootstrap_samples, seed=args.seed
    )
    if references is not None and metrics:
        report["task_metrics"] = {
            name: task_metrics.policy_report(
                *models[name],
                prompts,
                references,
                metrics=metrics,
                generation=generation,
                samples=args.bootstrap_samples,
                seed=args.seed,
                short_answer_words=args.short_answer_words,
                answers=responses[name],
            )[0]
            for name in models
        }
    write_outputs(Path(args.output_dir), report, prompts, responses, scores, references=references)
    if args.to_campaign:
        names = {"policy": policy_name(args.policy), "reference": policy_name(args.reference)}
        write_campaign_rows(Path(args.to_campaign), prompts, responses, names)
    save_resolved_config(args.output_dir, args)
    print(format_report(report))
    return report


def load_prompts(source: str, split: str, *, limit: int = 0) -> list[list[dict]]:
    """Prompts as message lists from prompts data or conversations (whose last assistant turn is dropped)."""
    return load_prompts_and_references(source, split, limit=limit)[0]


def load_prompts_and_references(source: str, split: str, *, limit: int = 0) -> tuple[list[list[dict]], list | None]:
    """(prompts, references): from conversations, each one's last answer is the reference of the turns before it;
    prompts data has no references (None)."""
    records = load_records(source, split)
    if limit:
        records = records.select(range(min(limit, len(records))))
    kind = detect_kind(records)
    if kind == "sft":
        return task_metrics.conversations_to_references(records, where=f"{source} [{split}]")
    if "prompt" in records.column_names:
        prompts = [
            row["prompt"] if isinstance(row["prompt"], list) else [{"role": "user", "content": row["prompt"]}]
            for row in records
        ]
        return prompts, None
    raise DataError(f"{source} [{split}]: no prompts: expected a `prompt` or a `messages` column")


def policy_name(spec: str) -> str:
    """A short name raters' data can carry for a policy spec: its folder name, or the spec itself."""
    return Path(spec).name if Path(spec).expanduser().exists() else spec


def write_campaign_rows(path: Path, prompts, responses: dict, names: dict) -> Path:
    """JSONL rows of a prompt and both responses as candidates, in the format `plumb collect import` reads."""
    if names["policy"] == names["reference"]:
        names = {role: f"{role}:{name}" for role, name in names.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for i, prompt in enumerate(prompts):
            candidates = [
                {"policy": names[role], "completion": [{"role": "assistant", "content": responses[role][i]}]}
                for role in ("policy", "reference")
            ]
            handle.write(json.dumps({"prompt_id": f"eval-{i}", "prompt": prompt, "candidates": candidates}) + "\n")
    logger.info("Wrote %d policy-vs-reference pairs for raters to %s", len(prompts), path)
    return path


def win_rate(policy_scores, reference_scores) -> np.ndarray:
    """Per prompt (n,): 1 when the policy's reward is higher, 0.5 on a tie, 0 when lower."""
    policy_scores, reference_scores = np.asarray(policy_scores), np.asarray(reference_scores)
    return (policy_scores > reference_scores) + 0.5 * (policy_scores == reference_scores)


def similar_length(policy_texts, reference_texts, *, tolerance: float = 0.2) -> np.ndarray:
    """Per prompt (n,): True when the two responses' lengths (chars) differ by at most `tolerance` of the longer."""
    policy_lengths = np.array([len(text) for text in policy_texts], dtype=float)
    reference_lengths = np.array([len(text) for text in reference_texts], dtype=float)
    return np.abs(policy_lengths - reference_lengths) <= tolerance * np.maximum(policy_lengths, reference_lengths)


def comparison_report(
    policy_scores,
    reference_scores,
    responses: dict,
    *,
    kl: float,
    samples: int,
    seed: int,
    length_tolerance: float = 0.2,
) -> dict:
    """Win rate (also among prompts whose two responses are of similar length) and mean rewards with bootstrap
    intervals, KL and mean lengths, as one JSON-ready dict."""
    from plumb.stats import bootstrap_ci

    wins = win_rate(policy_scores, reference_scores)
    report = {
        "prompts": len(wins),
        "win_rate": float(wins.mean()),
        "win_rate_ci": list(bootstrap_ci(wins, samples=samples, seed=seed)),
        "kl_to_reference": kl,
    }
    # A judge that likes short (or long) answers rewards a policy for its length alone: compare like with like too.
    matched = similar_length(responses["policy"], responses["reference"], tolerance=length_tolerance)
    report["length_tolerance"], report["length_matched_prompts"] = length_tolerance, int(matched.sum())
    report["win_rate_length_matched"] = float(wins[matched].mean()) if matched.any() else None
    report["win_rate_length_matched_ci"] = (
        list(bootstrap_ci(wins[matched], samples=samples, seed=seed)) if matched.sum() > 1 else None
    )
    for name, values in (("policy", policy_scores), ("reference", reference_scores)):
        report[f"{name}_reward"] = float(np.mean(values))
        report[f"{name}_reward_ci"] = list(bootstrap_ci(np.asarray(values), samples=samples, seed=seed))
        report[f"{name}_mean_length"] = float(np.mean([len(text) for text in responses[name]]))
    return report


def kl_estimate(policy_spec: str, reference_spec: str, prompts, responses) -> float:
    """KL(policy || reference) in nats along the policy's responses, averaged over prompts (see `token_kl`)."""
    from plumb.models import load_policy

    policy, tokenizer = load_policy(policy_spec, merge_adapter=True)
    reference, _ = load_policy(reference_spec, merge_adapter=True)
    return float(np.mean(token_kl(policy.eval(), reference.eval(), tokenizer, prompts, responses)))


def token_kl(policy, reference, tokenizer, prompts, responses) -> np.ndarray:
    """(n,) per response: sum over tokens y_t of KL(policy(.|x, y<t) || reference(.|x, y<t)), exact over the vocab.

    Exact at each position, so it is never negative, also on greedy responses, where the
    one-sample estimate log p - log q is only unbiased on sampled text, and can be negative.
    """
    import torch

    values = []
    with torch.inference_mode():
        for prompt, response in zip(prompts, responses):
            context = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=False)
            answer = tokenizer(response, add_special_tokens=False)["input_ids"]
            if not answer:
                values.append(0.0)
                continue
            ids = torch.tensor([context + answer], device=policy.device)
            positions = slice(len(context) - 1, ids.shape[1] - 1)  # the logits that predict the answer's tokens
            log_p = torch.log_softmax(policy(input_ids=ids).logits[0, positions].float(), dim=-1)
            log_q = torch.log_softmax(
                reference(input_ids=ids.to(reference.device)).logits[0, positions].float(), dim=-1
            )
            values.append((log_p.exp() * (log_p - log_q.to(log_p.device))).sum().item())
    return np.array(values)


def format_report(report: dict) -> str:
    """A short table for the terminal."""
    low, high = report["win_rate_ci"]
    lines = [
        f"prompts            {report['prompts']}",
        f"win rate (policy)  {report['win_rate']:.3f}  (95% CI {low:.3f} .. {high:.3f}; ties count half)",
    ]
    for name in ("policy", "reference"):
        low, high = report[f"{name}_reward_ci"]
        lines.append(
            f"{name + ' reward':<18} {report[f'{name}_reward']:.3f}  ({low:.3f} .. {high:.3f}), "
            f"mean length {report[f'{name}_mean_length']:.0f} chars"
        )
    if report.get("win_rate_length_matched") is not None:
        lines.append(
            f"win rate, similar length  {report['win_rate_length_matched']:.3f} on "
            f"{report['length_matched_prompts']} prompts (lengths within {report['length_tolerance']:.0%})"
        )
    lines.append(f"KL to reference    {report['kl_to_reference']:.3f} nats (summed along the policy's responses)")
    for name, metrics in report.get("task_metrics", {}).items():
        lines.append(task_metrics.format_metrics(metrics, name=name))
    return "\n".join(lines)


def write_outputs(output_dir: Path, report: dict, prompts, responses: dict, scores: dict, *, references=None) -> None:
    """report.json, samples.md (responses side by side, and the reference answers where there are some),
    rewards.png, and task_metrics.png when the report has task metrics."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "report.json").write_text(json.dumps(report, indent=2))
    header = ["prompt", "policy", "reward", "reference", "reward"] + (["reference answer"] if references else [])
    rows = []
    for i, prompt in enumerate(prompts):
        cells = [
            prompt[-1]["content"],
            responses["policy"][i],
            f"{scores['policy'][i]:.2f}",
            responses["reference"][i],
            f"{scores['reference'][i]:.2f}",
        ]
        rows.append(cells + ([references[i]] if references else []))
    (output_dir / "samples.md").write_text(samples_table(header, rows))
    plot_rewards(scores, report, output_dir / "rewards.png")
    if report.get("task_metrics"):
        task_metrics.plot_metrics(
            report["task_metrics"], output_dir / "task_metrics.png", title="task metrics against the reference answers"
        )


def plot_rewards(scores: dict, report: dict, path: Path) -> None:
    """Histograms of the judge's rewards for both policies, with the win rate in the title."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.add_subplot()
    bins = np.histogram_bin_edges(np.concatenate(list(scores.values())), bins=20)
    for name, values in scores.items():
        axes.hist(values, bins=bins, alpha=0.55, label=f"{name} (mean {np.mean(values):.2f})")
    axes.set_xlabel("judge reward")
    axes.set_ylabel("prompts")
    axes.set_title(f"policy vs reference: win rate {report['win_rate']:.2f} over {report['prompts']} prompts")
    axes.legend()
    figure.savefig(path, dpi=120)
