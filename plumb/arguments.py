"""Script arguments every training stage shares, on top of TRL's own `ScriptArguments`."""

from dataclasses import dataclass, field

from trl import ScriptArguments


@dataclass
class TrainingScriptArguments(ScriptArguments):
    """TRL's script arguments (dataset_name, splits) plus a held-out share and LoRA merging."""

    test_size: float = field(
        default=0.1,
        metadata={"help": "Share of the training data held out for evaluation when the dataset has no test split."},
    )
    merge_adapter: bool = field(
        default=False,
        metadata={"help": "With use_peft: save the LoRA adapter merged into the base model instead of the adapter."},
    )
