"""PPO's models (align/ppo_models.py): where the critic starts, one base for three roles under LoRA, and checkpoints
that load back into the same modules and as a policy."""

import pytest
import torch
from peft import LoraConfig

from align.ppo_models import (
    ACTOR,
    CRITIC,
    build_models,
    load_actor_critic,
    save_actor_critic,
    save_final_policy,
)
from plumb.config import ConfigError
from plumb.models import load_policy


def lora() -> LoraConfig:
    return LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")


def perturb(module: torch.nn.Module, seed: int, *, only: str = "") -> None:
    """Add noise to the trainable weights (those whose name contains `only`): a model that has trained."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if parameter.requires_grad and only in name:
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))


def trained_state(module) -> dict:
    return {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad}


def test_with_lora_one_base_serves_actor_critic_and_reference(tiny_policy_dir, tiny_reward_dir):
    actor_critic, reference, _ = build_models(
        tiny_policy_dir, {}, lora(), critic_init="auto", reward_paths=[tiny_reward_dir]
    )
    assert reference is None and actor_critic.critic_backbone is None
    trained = {name for name, p in actor_critic.named_parameters() if p.requires_grad}
    assert trained and all(".lora_" in name or name.startswith("value_head.") for name in trained)
    assert any(f".{ACTOR}." in name for name in trained) and any(f".{CRITIC}." in name for name in trained)
    base = [p for name, p in actor_critic.named_parameters() if not p.requires_grad]
    policy_alone, _ = load_policy(tiny_policy_dir)
    assert sum(p.numel() for p in base) == sum(p.numel() for p in policy_alone.parameters())  # one copy
    # the value head starts at zero: every value 0
    ids = torch.tensor([[1, 5, 9, 13, 17]])
    assert actor_critic.values(ids, torch.ones_like(ids), 3).abs().max() == 0


def test_without_lora_the_critic_starts_from_a_reward_model_that_reads_the_policys_tokens(
    tiny_policy_dir, tiny_reward_dir, decoder_reward_dir
):
    from transformers import AutoModelForSequenceClassification

    actor_critic, reference, _ = build_models(
        tiny_policy_dir, {}, None, critic_init="auto", reward_paths=[decoder_reward_dir]
    )
    scorer = AutoModelForSequenceClassification.from_pretrained(decoder_reward_dir)
    assert torch.equal(actor_critic.value_head.weight, scorer.score.weight)  # N+: the head included
    backbone = dict(actor_critic.critic_backbone.named_parameters())
    assert all(torch.equal(backbone[name], p) for name, p in scorer.model.named_parameters())
    assert reference is not None and not any(p.requires_grad for p in reference.parameters())

    # A reward model with another tokenizer (the MiniLM encoder): auto falls back to the policy, `reward` refuses
    actor_critic, _, _ = build_models(tiny_policy_dir, {}, None, critic_init="auto", reward_paths=[tiny_reward_dir])
    assert actor_critic.value_head.weight.abs().max() == 0
    with pytest.raises(ConfigError, match="critic_init: reward: .* another tokenizer"):
        build_models(tiny_policy_dir, {}, None, critic_init="reward", reward_paths=[tiny_reward_dir])
    with pytest.raises(ConfigError, match="with LoRA the critic is an adapter"):
        build_models(tiny_policy_dir, {}, lora(), critic_init="reward", reward_paths=[decoder_reward_dir])


@pytest.mark.parametrize("use_lora", [True, False], ids=["lora", "full"])
def test_a_checkpoint_loads_back_into_the_same_modules_and_as_a_policy(tmp_path, tiny_policy_dir, use_lora):
    actor_critic, _, tokenizer = build_models(
        tiny_policy_dir, {}, lora() if use_lora else None, critic_init="policy", reward_paths=[]
    )
    perturb(actor_critic, seed=1)
    saved = trained_state(actor_critic)
    save_actor_critic(actor_critic, tmp_path / "checkpoint", tokenizer)

    perturb(actor_critic, seed=2)
    load_actor_critic(actor_critic, tmp_path / "checkpoint")
    after = trained_state(actor_critic)
    # the same weights, and still the same ones trainable (peft's adapter switching freezes the inactive adapter)
    assert after.keys() == saved.keys() and all(torch.equal(after[k], saved[k]) for k in saved)

    # The checkpoint is a policy Plumb loads (an adapter on its base, or a model), with the actor's logits
    ids = torch.tensor([[1, 5, 9, 13, 17, 21]])
    expected = actor_critic.logits(ids, torch.ones_like(ids), 4, 1.0)
    policy, _ = load_policy(str(tmp_path / "checkpoint"), merge_adapter=True)
    assert torch.allclose(policy(input_ids=ids).logits[:, -5:-1], expected, atol=1e-5)

    # The final save merges the actor's adapter into the base when asked
    save_final_policy(actor_critic, tmp_path / "final", tokenizer, merge=True)
    assert (tmp_path / "final" / "model.safetensors").is_file() and (tmp_path / "final" / "critic").is_dir()
    assert not (tmp_path / "final" / "adapter_config.json").exists()
    merged, _ = load_policy(str(tmp_path / "final"))
    assert torch.allclose(merged(input_ids=ids).logits[:, -5:-1], expected, atol=1e-5)
