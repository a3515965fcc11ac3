"""The arguments of `plumb align dpo` that TRL's DPOConfig and ModelConfig do not already have."""

from dataclasses import dataclass, field

from plumb.arguments import TrainingScriptArguments


@dataclass
class DPOScriptArguments(TrainingScriptArguments):
    """The shared training script arguments, with preferences as data, plus the reference log-prob cache."""

    dataset_name: str | None = field(
        default="builtin:prefs",
        metadata={
            "help": "Preferences (prompt/chosen/rejected, or rankings that expand to pairs): builtin:NAME, a "
            "JSONL/JSON/Parquet/CSV file, a saved dataset directory or a Hub id."
        },
    )
    ref_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "The reference policy of the DPO loss (any spec load_policy takes), e.g. the SFT checkpoint "
            "when training goes on from an aligned policy (default: the starting policy; with LoRA, the base "
            "with the adapter disabled)."
        },
    )
    cache_ref_log_probs: bool = field(
        default=True,
        metadata={
            "help": "With precompute_ref_log_probs: keep the reference log-probs on disk under PLUMB_HOME, "
            "keyed by model and data, so a restart or a sweep over beta/loss reuses them."
        },
    )


ALGORITHMS = ("rloo", "grpo")


@dataclass
class OnlineRLScriptArguments(TrainingScriptArguments):
    """TRL's script arguments plus the reward model, algorithm and over-optimisation limits of `plumb align ppo`."""

    dataset_name: str | None = field(
        default="builtin:instruct",
        metadata={"help": "Prompts: prompts data (`prompt`), or conversations (`messages`, the last answer dropped)."},
    )
    algorithm: str = field(
        default="rloo",
        metadata={
            "help": "rloo (TRL RLOOTrainer: PPO's clipped surrogate, leave-one-out baseline) or grpo "
            "(TRL GRPOTrainer: group-normalised advantages).",
            "choices": list(ALGORITHMS),
        },
    )
    reward_model: str = field(
        default="outputs/reward-demo",
        metadata={
            "help": "Reward model directory from `plumb reward train`, or several comma-separated (an ensemble: "
            "the reward is their mean, their disagreement is watched)."
        },
    )
    unfinished_penalty: float = field(
        default=1.0, metadata={"help": "Subtracted from the reward of a completion that never ends (no eos)."}
    )
    max_prompts: int = field(default=0, metadata={"help": "Train on at most this many prompts (0: all)."})
    max_kl: float | None = field(default=None, metadata={"help": "Stop when KL to the reference exceeds this."})
    max_mean_length: float | None = field(
        default=None, metadata={"help": "Stop when the mean completion length (tokens) exceeds this."}
    )
    min_entropy: float | None = field(
        default=None, metadata={"help": "Stop when the policy's entropy falls below this."}
    )
    max_reward_disagreement: float | None = field(
        default=None, metadata={"help": "Stop when the reward ensemble's spread on the policy's samples exceeds this."}
    )
