"""The arguments of `plumb align dpo` that TRL's DPOConfig and ModelConfig do not already have."""

from dataclasses import dataclass, field

from trl import ScriptArguments


@dataclass
class DPOScriptArguments(ScriptArguments):
    """TRL's script arguments (dataset_name, splits) plus Plumb's: held-out share, merging, the ref-log-prob cache."""

    dataset_name: str | None = field(
        default="builtin:prefs",
        metadata={"help": "Preferences (prompt/chosen/rejected, or rankings that expand to pairs): builtin:NAME, a "
                  "JSONL/JSON/Parquet/CSV file, a saved dataset directory or a Hub id."},
    )
    test_size: float = field(
        default=0.1,
        metadata={"help": "Share of the training data held out for evaluation when the dataset has no test split."},
    )
    merge_adapter: bool = field(
        default=False,
        metadata={"help": "With use_peft: save the LoRA adapter merged into the base model instead of the adapter."},
    )
    cache_ref_log_probs: bool = field(
        default=True,
        metadata={"help": "With precompute_ref_log_probs: keep the reference log-probs on disk under PLUMB_HOME, "
                  "keyed by model and data, so a restart or a sweep over beta/loss reuses them."},
    )
