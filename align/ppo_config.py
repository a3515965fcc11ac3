"""The keys of a PPO run (`plumb align ppo`, `plumb align online --algorithm ppo`): transformers' TrainingArguments
plus PPO's own, named as TRL's former PPOConfig named them (TRL 1.16 has no PPO) and, for generation, as TRL's
RLOOConfig/GRPOConfig do.

Defaults are the studied ones of 'The N+ Implementation Details of RLHF with PPO' (Huang et al., 2024; "N+"),
which are also the defaults TRL's PPOTrainer had, unless a comment says otherwise.

Batch sizes per device, as in TRL's PPO: a rollout of per_device_train_batch_size x gradient_accumulation_steps x
num_mini_batches prompts; each PPO epoch splits it into num_mini_batches mini-batches (one optimizer step each) of
gradient_accumulation_steps micro-batches. One training step is one rollout and its PPO epochs.
"""

from dataclasses import dataclass, field

from transformers import TrainingArguments

CRITIC_INITS = ("auto", "reward", "policy")


@dataclass
class PPOConfig(TrainingArguments):
    """TrainingArguments plus the rollout, reward shaping, advantage and loss keys of PPO."""

    # TrainingArguments defaults that suit PPO: a step is a whole rollout, worth a log line; bf16 where it runs (TRL's)
    logging_steps: float = field(default=1, metadata={"help": "Log every this many steps (rollouts)."})
    bf16: bool | None = field(
        default=None, metadata={"help": "Train in bf16 (default: on, as TRL's trainers; Plumb turns it off on a CPU)."}
    )

    # Rollout
    max_prompt_length: int | None = field(
        default=512, metadata={"help": "Keep the last this many prompt tokens (None: all)."}
    )
    max_completion_length: int = field(
        default=53, metadata={"help": "Longest completion in tokens (N+: 53, TL;DR summaries)."}
    )
    temperature: float = field(
        default=0.7,
        metadata={
            "help": "Sampling temperature; log-probs are computed from the logits divided by it too (N+), so the "
            "ratio and the KL refer to the distribution that sampled."
        },
    )
    num_mini_batches: int = field(
        default=1, metadata={"help": "Mini-batches (optimizer steps) per rollout per PPO epoch (N+: 1)."}
    )
    num_ppo_epochs: int = field(default=4, metadata={"help": "Passes over each rollout (N+: 4)."})
    local_rollout_forward_batch_size: int = field(
        default=64, metadata={"help": "Rows per no-grad forward pass while scoring a rollout (memory, not maths)."}
    )

    # Reward: the reward model's score at the last token, a KL penalty to the reference at every token
    kl_coef: float = field(
        default=0.05, metadata={"help": "KL penalty coefficient (N+: 0.05, fixed); the start value when adaptive."}
    )
    kl_estimator: str = field(
        default="k1",
        metadata={
            "help": "Per-token KL in the reward: k1 (log p - log q, N+) or k3 (non-negative, lower variance).",
            "choices": ["k1", "k3"],
        },
    )
    kl_target: float | None = field(
        default=None,
        metadata={
            "help": "Adaptive KL controller (Ziegler et al., 2019): steer the KL per completion towards this many "
            "nats (their 6.0); None keeps kl_coef fixed (N+)."
        },
    )
    kl_horizon: int = field(
        default=10000, metadata={"help": "The adaptive controller's horizon in completions (Ziegler et al.: 10000)."}
    )
    whiten_rewards: bool = field(
        default=False, metadata={"help": "Whiten the per-token rewards of each rollout, keeping their mean (N+: off)."}
    )

    # Advantages
    gamma: float = field(default=1.0, metadata={"help": "Discount (N+: 1, no discount within a completion)."})
    lam: float = field(default=0.95, metadata={"help": "GAE lambda (N+: 0.95)."})
    whiten_advantages: bool = field(
        default=True, metadata={"help": "Whiten the advantages of each rollout (N+: on; OpenAI's and TRL's always)."}
    )

    # Losses
    cliprange: float = field(default=0.2, metadata={"help": "Policy ratio clip epsilon (N+: 0.2)."})
    cliprange_value: float = field(
        default=0.2, metadata={"help": "Value clip: new values stay this close to the rollout's (N+: 0.2)."}
    )
    vf_coef: float = field(default=0.1, metadata={"help": "Weight of the value loss (N+: 0.1)."})

    # The models
    critic_init: str = field(
        default="auto",
        metadata={
            "help": "Where the critic (value model) starts: reward (the reward model, head included, N+; needs a "
            "decoder reward model with the policy's tokenizer and no LoRA), policy (the policy with a new value "
            "head), or auto (reward when it can, else policy). With LoRA the critic is a second adapter on the "
            "policy's frozen base.",
            "choices": list(CRITIC_INITS),
        },
    )
    disable_dropout: bool = field(
        default=True, metadata={"help": "Switch dropout off in every model (N+), so log-probs are deterministic."}
    )

    # Generation with vLLM (optional: `pip install vllm`), as TRL's GRPO/RLOO
    use_vllm: bool = field(default=False, metadata={"help": "Generate rollouts with vLLM instead of transformers."})
    vllm_mode: str = field(
        default="colocate",
        metadata={
            "help": "colocate (vLLM in this process) or server (`trl vllm-serve`).",
            "choices": ["colocate", "server"],
        },
    )
    vllm_server_base_url: str | None = field(default=None, metadata={"help": "The vLLM server's URL (server mode)."})
    vllm_gpu_memory_utilization: float = field(
        default=0.3, metadata={"help": "Share of GPU memory vLLM may take (colocate mode)."}
    )
    vllm_tensor_parallel_size: int = field(default=1, metadata={"help": "vLLM tensor parallelism (colocate mode)."})
    ds3_gather_for_generation: bool = field(
        default=True, metadata={"help": "DeepSpeed ZeRO-3: gather the policy's weights to generate (faster)."}
    )

    # The completions table
    log_completions: bool = field(
        default=False, metadata={"help": "At each log, print a table of sampled completions (and send it to W&B)."}
    )
    num_completions_to_print: int | None = field(
        default=None, metadata={"help": "Rows of that table (None: the whole rollout)."}
    )

    def __post_init__(self):
        self.bf16 = not self.fp16 if self.bf16 is None else self.bf16
        if self.fp16:
            # fp16's loss scaler expects one optimizer step per training step; PPO takes several per rollout.
            raise ValueError("fp16: PPO trains in fp32 or bf16; set fp16 false (bf16 true on a GPU that has it)")
        if self.num_mini_batches < 1 or self.num_ppo_epochs < 1:
            raise ValueError("num_mini_batches and num_ppo_epochs must be at least 1")
        super().__post_init__()

    @property
    def rollout_batch_size(self) -> int:
        """Prompts per rollout on each device: micro-batch x accumulation steps x mini-batches."""
        return self.per_device_train_batch_size * self.gradient_accumulation_steps * self.num_mini_batches
