"""The arguments of `plumb sft train` that TRL's SFTConfig and ModelConfig do not already have."""

from dataclasses import dataclass, field

from plumb.arguments import TrainingScriptArguments


@dataclass
class SFTScriptArguments(TrainingScriptArguments):
    """The shared training script arguments, with conversations as data, plus evaluation before training."""

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
