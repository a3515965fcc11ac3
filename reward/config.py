"""The arguments of the `plumb reward` verbs that TRL's RewardConfig and ModelConfig do not already have."""

from dataclasses import dataclass, field

from plumb.arguments import SearchableScriptArguments

# How `plumb reward train` learns from rankings (reward/listwise.py): their pairs, or the whole ranked order.
RANKING_LOSSES = ("pairwise", "plackett_luce")


@dataclass
class RewardScriptArguments(SearchableScriptArguments):
    """The shared training script arguments and search, with preferences (pairs or rankings) as data; the ranking
    loss, margin, freezing, early stopping."""

    dataset_name: str | None = field(
        default="builtin:prefs",
        metadata={
            "help": "Pairwise preferences (prompt, chosen, rejected, optional margin) or rankings (prompt, "
            "completions, ranks: 1 = best, ties allowed): builtin:NAME, a JSONL/JSON/Parquet/CSV file, a saved "
            "dataset directory or a Hub id."
        },
    )
    ranking_loss: str = field(
        default="pairwise",
        metadata={
            "help": "pairwise: rankings are expanded to their pairs (ties give none), Bradley-Terry on each pair. "
            "plackett_luce: each ranking is one example, loss = negative Plackett-Luce log-likelihood of its "
            "order (tied completions share each other's denominators, Breslow); pairs are rankings of two. "
            "Held-out data is evaluated pairwise either way.",
            "choices": list(RANKING_LOSSES),
        },
    )
    use_margin: bool = field(
        default=True,
        metadata={"help": "Use the `margin` column (strength of the judgment) in the loss when the data has one."},
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop after this many evaluations without a better held-out accuracy, and keep the best "
            "checkpoint (needs eval_strategy and save_strategy of steps or epoch)."
        },
    )
    freeze_layers: int = field(
        default=0,
        metadata={
            "help": "Freeze the token embeddings and the lowest N transformer blocks (0: train everything): "
            "faster steps on a CPU and less overfitting on a few thousand pairs. Ignored with use_peft."
        },
    )
    merge_adapter: bool = field(  # on by default here: eval, score and align load the folder as one model
        default=True,
        metadata={
            "help": "With use_peft: save the LoRA adapter merged into the backbone, so the folder loads with "
            "AutoModelForSequenceClassification alone."
        },
    )
    bootstrap_samples: int = field(
        default=1000,
        metadata={"help": "Bootstrap resamples for the confidence interval of the held-out accuracy."},
    )

    def __post_init__(self):
        """Refuse an unknown ranking loss, naming the choices."""
        # argparse checks choices on the command line and in YAML; this catches dataclasses built in code (bench, loop).
        if self.ranking_loss not in RANKING_LOSSES:
            raise ValueError(f"ranking_loss must be one of {', '.join(RANKING_LOSSES)}, got {self.ranking_loss!r}")


@dataclass
class ScoringArguments:
    """Which trained reward model(s) score which split, and how inputs are cut and batched (eval and score)."""

    model_name_or_path: str = field(
        default="outputs/reward-demo",
        metadata={
            "help": "A trained reward model directory; several comma-separated directories form an ensemble "
            "(mean and spread of their rewards)."
        },
    )
    dataset_name: str = field(
        default="builtin:prefs",
        metadata={
            "help": "The data: builtin:NAME, a JSONL/JSON/Parquet/CSV file, a saved dataset directory or a Hub id."
        },
    )
    dataset_split: str = field(default="test", metadata={"help": "The split to use."})
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Longest input in tokens, the end kept (default: the model's training max_length, from "
            "its plumb_config.yaml, else 512)."
        },
    )
    batch_size: int = field(default=32, metadata={"help": "Conversations scored per forward pass."})


@dataclass
class EvalArguments(ScoringArguments):
    """What `plumb reward eval` measures on held-out pairs, and the gate that stops a pipeline."""

    output_dir: str | None = field(
        default=None,
        metadata={"help": "Where to write eval_report.json and reliability.png (default: the model directory)."},
    )
    bootstrap_samples: int = field(default=1000, metadata={"help": "Bootstrap resamples for the accuracy interval."})
    num_bins: int = field(default=10, metadata={"help": "Confidence bins for the calibration error and the diagram."})
    seed: int = field(default=0, metadata={"help": "Seed of the bootstrap."})
    min_accuracy: float | None = field(
        default=None,
        metadata={"help": "Exit with status 1 when held-out accuracy is below this."},
    )
    max_ece: float | None = field(
        default=None,
        metadata={"help": "Exit with status 1 when the expected calibration error is above this."},
    )
    eval_sets: str | None = field(
        default=None,
        metadata={
            "help": "Evaluate the model on several datasets in one table instead of dataset_name: comma-separated "
            "dataset specs (a file, builtin:NAME, a folder or a Hub id), each optionally SPEC@SPLIT (default "
            "split: dataset_split). Ranking data counts as its pairs. The gate applies to every set."
        },
    )
    kfold: int | None = field(
        default=None,
        metadata={
            "help": "Cross-validate a training recipe instead of evaluating a trained model: K folds by prompt, "
            "K models trained with the keys of `plumb reward train` (the same as `plumb reward cv --kfold K`)."
        },
    )


@dataclass
class CrossValidationArguments:
    """How `plumb reward cv` (and `plumb reward eval --kfold K`) cross-validates a `plumb reward train` recipe."""

    kfold: int = field(
        default=5,
        metadata={
            "help": "Number of folds: the training split's pairs (or rankings) are dealt into K folds by normalised "
            "prompt, so no prompt is in two folds; each fold is scored by a model trained on the other K-1."
        },
    )
    keep_fold_models: bool = field(
        default=False,
        metadata={"help": "Keep each fold's trained model under OUTPUT_DIR/cv-Kfold/fold-N/model (default: deleted)."},
    )

    def __post_init__(self):
        """Refuse fewer than two folds."""
        if self.kfold < 2:
            raise ValueError(f"kfold must be at least 2 (one fold to hold out, one to train on), got {self.kfold}")


@dataclass
class ScoreArguments(ScoringArguments):
    """Where `plumb reward score` writes the dataset (pairwise, unpaired or ranking) with its reward columns."""

    output_path: str = field(
        default="scored.jsonl",
        metadata={"help": "Where to write the scored dataset (.jsonl or .parquet, or a directory for save_to_disk)."},
    )
    column: str = field(default="reward", metadata={"help": "Name of the column (or column prefix) to write."})


@dataclass
class PushArguments:
    """Where a trained reward model goes on the Hub, and with which card."""

    repo_id: str | None = field(default=None, metadata={"help": "The Hub repository, e.g. my-org/plumb-reward."})
    model_dir: str = field(default="outputs/reward-demo", metadata={"help": "The trained reward model directory."})
    private: bool = field(default=False, metadata={"help": "Create the Hub repository as private."})
    dry_run: bool = field(
        default=False,
        metadata={"help": "Write the card and check the folder loads, but upload nothing."},
    )
    commit_message: str = field(default="Upload reward model with Plumb", metadata={"help": "The Hub commit message."})
