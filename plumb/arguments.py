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


@dataclass
class SearchableScriptArguments(TrainingScriptArguments):
    """The shared training script arguments plus an Optuna search (plumb/hp_search.py), for the stages that have one."""

    hp_search: bool = field(
        default=False,
        metadata={
            "help": "Search hp_space with Optuna on the held-out metric (reward: eval_accuracy, sft: eval_loss, "
            "dpo: eval_rewards/accuracies) instead of one run; writes OUTPUT_DIR/hp_search.db (a rerun adds "
            "trials), best_config.yaml, hp_search.json and hp_search.png."
        },
    )
    hp_space: dict | None = field(
        default=None,
        metadata={
            "help": "YAML only: key -> {low, high, log, step} or {choices: [...]}. Searchable: training keys such "
            "as learning_rate, num_train_epochs, max_steps, per_device_train_batch_size, weight_decay, "
            "warmup_steps, seed (an unknown key's error lists the stage's own), beta in dpo, freeze_layers in "
            "reward, lora_r and lora_alpha with use_peft in sft and dpo."
        },
    )
    hp_trials: int = field(default=8, metadata={"help": "Trials to add to the study in this run of the search."})
