"""The arguments of `plumb sft train` that TRL's SFTConfig and ModelConfig do not already have."""

from dataclasses import dataclass, field

from trl import ScriptArguments


@dataclass
class SFTScriptArguments(ScriptArguments):
    """TRL's script arguments (dataset_name, splits) plus Plumb's: held-out share, merging, eval before training."""

    dataset_name: str | None = field(
        default="builtin:instruct",
        metadata={"help": "Conversations (`messages` column): builtin:NAME, a JSONL/JSON/Parquet/CSV file, a saved "
                  "dataset directory or a Hub id."},
    )
    test_size: float = field(
        default=0.1,
        metadata={"help": "Share of the training data held out for evaluation when the dataset has no test split."},
    )
    merge_adapter: bool = field(
        default=False,
        metadata={"help": "With use_peft: save the LoRA adapter merged into the base model instead of the adapter."},
    )
    eval_before_train: bool = field(
        default=True,
        metadata={"help": "Evaluate once before training so the report shows perplexity before and after."},
    )
