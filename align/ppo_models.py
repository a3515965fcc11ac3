"""PPO's models in memory: the actor (the policy), the critic (a value head on a backbone) and the frozen reference.

With LoRA, one frozen base carries two adapters, the actor's (peft's "default") and the critic's, and the
reference is that base with the adapters disabled: one copy of the weights serves all three. Without LoRA they
are the usual separate models. The reward model(s) live in `align.rewards`: they read text, with their own
tokenizer. A checkpoint holds the actor where Plumb loads a policy from (a LoRA adapter or a full model, with
the tokenizer) and the critic in `critic/`.
"""

import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

logger = logging.getLogger(__name__)

ACTOR, CRITIC = "default", "critic"  # peft's adapter names: the actor keeps peft's default one
CRITIC_DIR = "critic"
CRITIC_FILE = "critic.safetensors"  # LoRA: the critic adapter and the value head
VALUE_HEAD_FILE = "value_head.safetensors"  # full models: the head beside the critic's backbone


def backbone_of(causal_lm: nn.Module) -> nn.Module:
    """The transformer under a causal LM's (or a sequence classifier's) head, e.g. `LlamaForCausalLM.model`."""
    return getattr(causal_lm, causal_lm.base_model_prefix)


def new_value_head(hidden_size: int, like: nn.Module) -> nn.Linear:
    """A value head of zeros in float32 (also under a bf16 model), on the device of `like`: every value starts at 0,
    not at noise."""
    head = nn.Linear(hidden_size, 1, dtype=torch.float32, device=next(like.parameters()).device)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return head


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip left padding, so a padded prompt sees the positions it would see alone."""
    return (attention_mask.long().cumsum(1) - 1).clamp(min=0)


def completion_logits(causal_lm: nn.Module, input_ids, attention_mask, completion_length: int, temperature: float):
    """(batch, completion_length, vocab) a causal LM's next-token logits over the completion, divided by the
    temperature (N+: the distribution that sampled)."""
    out = causal_lm(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=positions(attention_mask),
        logits_to_keep=completion_length + 1,
        use_cache=False,
    )
    return out.logits[:, :-1].float() / temperature


class ActorCritic(nn.Module):
    """The weights PPO trains, as one module: the policy and the critic (a backbone and a value head).

    One module so that the Trainer's optimizer, checkpoints and DDP see every trained weight, and one forward call
    gives both the logits and the values. `critic_backbone` is None when the critic is the policy's own base with
    the critic adapter (LoRA).
    """

    def __init__(self, policy: nn.Module, value_head: nn.Linear, critic_backbone: nn.Module | None = None):
        super().__init__()
        self.policy, self.value_head, self.critic_backbone = policy, value_head, critic_backbone
        self.config = policy.config  # the Trainer reads a model's config
        # peft's set_adapter freezes every adapter but the active one; both train, so remember which weights do.
        self._trained = [p for p in self.parameters() if p.requires_grad]

    @property
    def shares_base(self) -> bool:
        """True when actor and critic are two LoRA adapters on one base."""
        return self.critic_backbone is None

    @property
    def is_gradient_checkpointing(self) -> bool:
        """Whether the policy recomputes activations in the backward pass (TRL switches it off to generate)."""
        for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):  # transformers 5's name first
            if hasattr(self.policy, name):
                return bool(getattr(self.policy, name))
        return False

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None) -> None:
        """Gradient checkpointing in the policy and the critic's own backbone (never with LoRA: see align.ppo)."""
        for model in (self.policy, self.critic_backbone):
            if model is not None:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)

    def gradient_checkpointing_disable(self) -> None:
        """Switch gradient checkpointing off again."""
        for model in (self.policy, self.critic_backbone):
            if model is not None:
                model.gradient_checkpointing_disable()

    def use_adapter(self, name: str) -> None:
        """Make `name` (ACTOR or CRITIC) the active adapter of the shared base; every trained weight stays trainable."""
        if self.shares_base and self.policy.active_adapter != name:
            self.policy.set_adapter(name)
            for parameter in self._trained:
                parameter.requires_grad_(True)

    def logits(self, input_ids, attention_mask, completion_length: int, temperature: float) -> torch.Tensor:
        """(batch, completion_length, vocab) next-token logits over the completion, divided by the temperature (N+)."""
        self.use_adapter(ACTOR)
        return completion_logits(self.policy, input_ids, attention_mask, completion_length, temperature)

    def values(self, input_ids, attention_mask, completion_length: int) -> torch.Tensor:
        """(batch, completion_length) the critic's value of the state before each completion token."""
        if self.shares_base:
            self.use_adapter(CRITIC)
            backbone = backbone_of(self.policy.get_base_model())
        else:
            backbone = self.critic_backbone
        try:
            hidden = backbone(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=positions(attention_mask),
                use_cache=False,
            ).last_hidden_state
        finally:
            self.use_adapter(ACTOR)  # generation and saving expect the actor active
        states = hidden[:, -completion_length - 1 : -1]
        return self.value_head(states.float()).squeeze(-1).float()

    def forward(self, input_ids, attention_mask, completion_length: int, temperature: float):
        """(logits, values) over the completion: what a PPO update differentiates."""
        return (
            self.logits(input_ids, attention_mask, completion_length, temperature),
            self.values(input_ids, attention_mask, completion_length),
        )


def reference_logits(actor_critic: ActorCritic, reference, input_ids, attention_mask, completion_length, temperature):
    """The frozen reference's logits over the completion: the shared base with adapters off, or its own model."""
    if reference is not None:
        return completion_logits(reference, input_ids, attention_mask, completion_length, temperature)
    with actor_critic.policy.disable_adapter():
        return actor_critic.logits(input_ids, attention_mask, completion_length, temperature)


# Building


def same_tokenizer(a, b) -> bool:
    """Whether two tokenizers turn text into the same ids (a critic from the reward model must read the policy's)."""
    return a.get_vocab() == b.get_vocab()


def critic_source(critic_init: str, *, use_peft: bool, reward_paths: list[str], policy_tokenizer) -> str:
    """'reward' or 'policy': where the critic starts, from the config's critic_init and what the models allow."""
    from plumb.models import load_tokenizer

    if critic_init == "policy" or (critic_init == "auto" and use_peft):
        return "policy"
    why_not = None
    if use_peft:
        why_not = "with LoRA the critic is an adapter on the policy's base"
    elif not reward_paths:
        why_not = "no reward model directory to start from"
    else:
        if not same_tokenizer(load_tokenizer(reward_paths[0]), policy_tokenizer):
            why_not = f"the reward model {reward_paths[0]} reads another tokenizer than the policy's"
    if why_not is None:
        return "reward"
    if critic_init == "reward":
        from plumb.config import ConfigError

        raise ConfigError(f"critic_init: reward: {why_not}; use critic_init: policy (or auto)")
    logger.info("Critic from the policy with a new value head: %s.", why_not)
    return "policy"


def build_models(model_spec: str, model_kwargs: dict, peft_config, *, critic_init: str, reward_paths: list[str]):
    """(ActorCritic, frozen reference or None, tokenizer) for a policy spec; LoRA when `peft_config` is given."""
    from transformers import AutoModelForSequenceClassification

    from plumb.models import load_policy

    policy, tokenizer = load_policy(model_spec, merge_adapter=True, **model_kwargs)
    source = critic_source(
        critic_init, use_peft=peft_config is not None, reward_paths=reward_paths, policy_tokenizer=tokenizer
    )
    if peft_config is not None:
        from peft import get_peft_model

        policy = get_peft_model(policy, peft_config)  # the actor: peft's "default" adapter
        policy.add_adapter(CRITIC, peft_config)
        policy.set_adapter(ACTOR)
        for name, parameter in policy.named_parameters():  # add_adapter leaves the new adapter frozen
            if f".{CRITIC}." in name:
                parameter.requires_grad_(True)
        head = new_value_head(policy.config.hidden_size, policy)
        return ActorCritic(policy, head), None, tokenizer

    reference, _ = load_policy(model_spec, merge_adapter=True, **model_kwargs)
    reference.eval().requires_grad_(False)
    if source == "reward":
        scorer = AutoModelForSequenceClassification.from_pretrained(reward_paths[0], **model_kwargs)
        if not hasattr(scorer, "score"):
            from plumb.config import ConfigError

            raise ConfigError(f"critic_init: {reward_paths[0]} has no decoder reward head (`score`) to start from")
        backbone, head = backbone_of(scorer), new_value_head(scorer.config.hidden_size, scorer)
        with torch.no_grad():  # N+: the critic starts as the reward model, its head included
            head.weight.copy_(scorer.score.weight[:1])
        logger.info("Critic from the reward model %s (its head included).", reward_paths[0])
    else:
        critic_lm, _ = load_policy(model_spec, merge_adapter=True, **model_kwargs)
        backbone, head = backbone_of(critic_lm), new_value_head(critic_lm.config.hidden_size, critic_lm)
    return ActorCritic(policy, head, critic_backbone=backbone), reference, tokenizer


# Saving and loading


def save_actor_critic(actor_critic: ActorCritic, directory, tokenizer) -> None:
    """Write the actor into `directory` (a LoRA adapter or a full model, loadable as a policy) and the critic into
    `directory/critic`."""
    directory = Path(directory)
    (directory / CRITIC_DIR).mkdir(parents=True, exist_ok=True)
    head = {f"value_head.{k}": v.detach().contiguous() for k, v in actor_critic.value_head.state_dict().items()}
    if actor_critic.shares_base:
        from peft import get_peft_model_state_dict

        actor_critic.policy.save_pretrained(directory, selected_adapters=[ACTOR])
        critic = get_peft_model_state_dict(actor_critic.policy, adapter_name=CRITIC)
        save_file({**{k: v.contiguous() for k, v in critic.items()}, **head}, directory / CRITIC_DIR / CRITIC_FILE)
    else:
        actor_critic.policy.save_pretrained(directory)
        actor_critic.critic_backbone.save_pretrained(directory / CRITIC_DIR)
        save_file(head, directory / CRITIC_DIR / VALUE_HEAD_FILE)
    tokenizer.save_pretrained(directory)


def load_actor_critic(actor_critic: ActorCritic, directory) -> None:
    """Load what `save_actor_critic` wrote back into the same modules (a resume: the optimizer keeps its tensors)."""
    directory = Path(directory)
    if actor_critic.shares_base:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(actor_critic.policy, load_file(directory / "adapter_model.safetensors"), ACTOR)
        critic = load_file(directory / CRITIC_DIR / CRITIC_FILE)
        head = {k.removeprefix("value_head."): v for k, v in critic.items() if k.startswith("value_head.")}
        adapter = {k: v for k, v in critic.items() if not k.startswith("value_head.")}
        set_peft_model_state_dict(actor_critic.policy, adapter, CRITIC)
    else:
        _load_weights(actor_critic.policy, directory)
        _load_weights(actor_critic.critic_backbone, directory / CRITIC_DIR)
        head = {
            k.removeprefix("value_head."): v for k, v in load_file(directory / CRITIC_DIR / VALUE_HEAD_FILE).items()
        }
    actor_critic.value_head.load_state_dict(head)
    actor_critic.use_adapter(ACTOR)


def _load_weights(model: nn.Module, directory: Path) -> None:
    from transformers.trainer_utils import load_sharded_checkpoint

    if (directory / "model.safetensors.index.json").is_file():
        load_sharded_checkpoint(model, str(directory), strict=False)
        return
    result = model.load_state_dict(load_file(directory / "model.safetensors"), strict=False)
    tied = {name for name, _ in model.named_parameters(remove_duplicate=False)} - set(dict(model.named_parameters()))
    missing = set(result.missing_keys) - tied
    if missing or result.unexpected_keys:
        raise RuntimeError(
            f"{directory}: weights do not match the model (missing {missing}, extra {result.unexpected_keys})"
        )


def save_final_policy(actor_critic: ActorCritic, directory, tokenizer, *, merge: bool) -> None:
    """The trained policy as a run's result: the actor (LoRA merged into the base when `merge`), and the critic."""
    save_actor_critic(actor_critic, directory, tokenizer)
    if merge and actor_critic.shares_base:
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            (Path(directory) / name).unlink(missing_ok=True)
        merged = actor_critic.policy.merge_and_unload(adapter_names=[ACTOR])
        merged.save_pretrained(directory)
