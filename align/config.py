"""The arguments of the `plumb align` verbs that TRL's configs and ModelConfig do not already have, and the
preference losses each offline verb offers (TRL's own, a `loss_type` away) with the data each trains on."""

from dataclasses import dataclass, field

from plumb.arguments import SearchableScriptArguments, TrainingScriptArguments


@dataclass
class DPOScriptArguments(SearchableScriptArguments):
    """The shared training script arguments and search, with preferences as data, plus the reference log-prob cache."""

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


# TRL 1.16's DPOTrainer losses (DPOConfig.loss_type; several combine with loss_weights, e.g. MPO). All train on
# pairwise preferences: the `pairwise` export, or a `ranking` export expanded to its pairs.
DPO_LOSSES = {
    "sigmoid": "DPO",
    "hinge": "SLiC (hinge)",
    "ipo": "IPO (beta is its tau)",
    "exo_pair": "EXO (label_smoothing is its epsilon)",
    "nca_pair": "NCA",
    "robust": "Robust DPO (label_smoothing: the rate of flipped labels)",
    "bco_pair": "BCO, paired",
    "sppo_hard": "SPPO, hard labels",
    "aot": "AOT",
    "aot_unpaired": "AOT, unpaired",
    "apo_zero": "APO-zero (the chosen answers beat the policy's own)",
    "apo_down": "APO-down (the chosen answers are worse than the policy's own)",
    "discopop": "DiscoPOP (discopop_tau)",
    "sft": "SFT on the chosen answers (with sigmoid: RPO)",
    "sigmoid_norm": "length-normalised DPO (SimPO's normalisation, with a reference)",
}
# TRL 1.16's KTOTrainer losses (KTOConfig.loss_type). Both train on unpaired data: the `kto` export (or pairs,
# each split into a desirable and an undesirable row).
KTO_LOSSES = {
    "kto": "KTO",
    "apo_zero_unpaired": "APO-zero, unpaired (no KL estimate: any batch size)",
}


@dataclass
class KTOScriptArguments(TrainingScriptArguments):
    """The shared training script arguments, with unpaired preferences as data, and a separate reference."""

    dataset_name: str | None = field(
        default="builtin:prefs",
        metadata={
            "help": "Unpaired preferences (prompt/completion/label: `plumb collect export --format kto`), or pairs, "
            "each split into a desirable and an undesirable row: builtin:NAME, a JSONL/JSON/Parquet/CSV file, "
            "a saved dataset directory or a Hub id."
        },
    )
    ref_model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "The reference policy of the KTO loss (default: the starting policy; with LoRA, the base "
            "with the adapter disabled)."
        },
    )


ALGORITHMS = ("ppo", "rloo", "grpo")


@dataclass
class OnlineRLScriptArguments(TrainingScriptArguments):
    """TRL's script arguments plus the reward model, algorithm and over-optimisation limits of `plumb align online`
    (and `plumb align ppo`, which is `online` with algorithm ppo)."""

    dataset_name: str | None = field(
        default="builtin:instruct",
        metadata={"help": "Prompts: prompts data (`prompt`), or conversations (`messages`, the last answer dropped)."},
    )
    algorithm: str = field(
        default="ppo",
        metadata={
            "help": "ppo (Plumb's PPO: a critic, GAE, clipped policy and value losses), rloo (TRL RLOOTrainer: "
            "PPO's clipped surrogate, leave-one-out baseline) or grpo (TRL GRPOTrainer: group-normalised advantages).",
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
