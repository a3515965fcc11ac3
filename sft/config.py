"""The arguments of `plumb sft train` that TRL's SFTConfig and ModelConfig do not already have."""

from dataclasses import dataclass, field

from plumb.arguments import SearchableScriptArguments


@dataclass
class SFTScriptArguments(SearchableScriptArguments):
    """The shared training script arguments and search, with conversations as data, plus evaluation before training."""

    dataset_name: str | None = field(
        default="builtin:instruct",
        metadata={
            "help": "Conversations (`messages` column): builtin:NAME, a JSONL/JSON/Parquet/CSV file, a saved "
            "dataset directory or a Hub id."
        },
    )
    eval_before_train: bool = field(
        default=True,
        metadata={"help": "Evaluate once before training so the report shows perplexity before and after."},
    )
    task_metrics: list[str] = field(
        default_factory=lambda: ["perplexity", "rouge_l", "bleu", "exact_match"],
        metadata={
            "help": "Task metrics of the trained policy on held-out conversations (their last answers are the "
            "references), reported at the end as task/NAME with bootstrap intervals: any of perplexity, rouge_l, bleu, "
            "exact_match (as `plumb sft eval`)."
        },
    )
    task_metrics_examples: int = field(
        default=40, metadata={"help": "Held-out conversations the task metrics use (0: no task metrics)."}
    )
    task_max_new_tokens: int = field(
        default=64, metadata={"help": "Longest answer the policy writes for the task metrics (greedy)."}
    )
