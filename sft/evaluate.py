"""`plumb sft eval`: a policy's task metrics on held-out conversations whose last answer is the reference.

Perplexity of the reference answers given their prompts, and ROUGE-L, BLEU and exact match (on short
answers) of the policy's own greedy answers against them, computed by Hugging Face Evaluate's own scripts
(shipped, so nothing is downloaded), each with a 95% bootstrap interval over examples. Writes report.json,
answers.jsonl, samples.md (reference and answer side by side) and task_metrics.png. `plumb sft train` reports the same
metrics on its held-out split at the end of training.

    plumb sft eval --config configs/sft/eval-demo.yaml
    plumb sft eval --model_name_or_path outputs/sft-demo --metrics rouge_l bleu
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from plumb import task_metrics
from plumb.cards import samples_table
from plumb.config import parse_config, save_resolved_config
from plumb.data import load_records

logger = logging.getLogger(__name__)


@dataclass
class SFTEvalArguments:
    """The policy, the held-out conversations, the metrics and the decoding settings."""

    model_name_or_path: str = field(
        default="outputs/sft-demo", metadata={"help": "The policy to evaluate (any spec load_policy takes)."}
    )
    dataset_name: str = field(
        default="builtin:instruct",
        metadata={"help": "Conversations (`messages`) whose last turn, an assistant answer, is the reference."},
    )
    dataset_split: str = field(default="test", metadata={"help": "Split to read the conversations from."})
    max_examples: int = field(default=40, metadata={"help": "Evaluate on at most this many conversations (0: all)."})
    metrics: list[str] = field(
        default_factory=lambda: list(task_metrics.METRICS),
        metadata={"help": f"Which of {', '.join(task_metrics.METRICS)} to compute."},
    )
    max_new_tokens: int = field(default=96, metadata={"help": "Longest answer to generate (greedy decoding)."})
    batch_size: int = field(default=8, metadata={"help": "Prompts generated at a time."})
    short_answer_words: int = field(
        default=5, metadata={"help": "Exact match is scored where the reference has at most this many words."}
    )
    bootstrap_samples: int = field(default=1000, metadata={"help": "Resamples for the confidence intervals."})
    seed: int = field(default=0, metadata={"help": "Seed of the bootstrap."})
    output_dir: str = field(
        default="outputs/sft-eval", metadata={"help": "Where report.json, samples.md and task_metrics.png go."}
    )


def config_types() -> tuple:
    """The dataclasses a `plumb sft eval` config fills."""
    return (SFTEvalArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then evaluate."""
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def main(args: SFTEvalArguments) -> dict:
    """Score the policy on the references and write report.json, samples.md and task_metrics.png; the report."""
    from plumb.generation import load_on_device

    metrics = task_metrics.check_metrics(args.metrics)  # before anything loads
    where = f"{args.dataset_name} [{args.dataset_split}]"
    records = load_records(args.dataset_name, args.dataset_split)
    if "messages" not in records.column_names:
        from plumb.data import DataError

        raise DataError(f"{where}: no `messages` column: references come from conversations' last answers")
    if args.max_examples:
        records = records.select(range(min(args.max_examples, len(records))))
    prompts, references = task_metrics.conversations_to_references(records, where=where)

    model, tokenizer = load_on_device(args.model_name_or_path)
    report, answers = task_metrics.policy_report(
        model,
        tokenizer,
        prompts,
        references,
        metrics=metrics,
        generation={"max_new_tokens": args.max_new_tokens, "do_sample": False},
        batch_size=args.batch_size,
        samples=args.bootstrap_samples,
        seed=args.seed,
        short_answer_words=args.short_answer_words,
    )
    output_dir = Path(args.output_dir)
    write_outputs(output_dir, report, prompts, references, answers, title=Path(args.model_name_or_path).name)
    save_resolved_config(output_dir, args)
    print(task_metrics.format_metrics(report))
    return report


def write_outputs(output_dir: Path, report: dict, prompts, references, answers, *, title: str) -> None:
    """report.json, task_metrics.png and, when answers were generated, answers.jsonl and samples.md (reference beside
    answer)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "report.json").write_text(json.dumps(report, indent=2))
    task_metrics.plot_metrics({title: report}, output_dir / "task_metrics.png", title=f"{title}: task metrics")
    if answers is None:
        return
    with (output_dir / "answers.jsonl").open("w") as handle:
        for prompt, reference, answer in zip(prompts, references, answers):
            handle.write(json.dumps({"prompt": prompt, "reference": reference, "answer": answer}) + "\n")
    rows = [
        (prompt[-1]["content"], reference, answer) for prompt, reference, answer in zip(prompts, references, answers)
    ]
    (output_dir / "samples.md").write_text(samples_table(["prompt", "reference", "answer"], rows))
