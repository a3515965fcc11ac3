"""PPO's update and KL controller (align/ppo_trainer.py): the number of optimizer steps, a first ratio of exactly 1, an
update that moves each completion the way its advantage says, and a KL coefficient that survives a resume."""

import pytest
import torch
from accelerate import Accelerator
from peft import LoraConfig
from transformers import TrainerControl, TrainerState

from align.ppo_config import PPOConfig
from align.ppo_math import gae, kl_shaped_rewards, masked_mean, whiten
from align.ppo_models import build_models
from align.ppo_rollout import Scored, generate_rollout, score_rollout
from align.ppo_trainer import KLController, advantages_and_returns, ppo_loss, ppo_update, update_batch


def config(tmp_path, **keys) -> PPOConfig:
    return PPOConfig(output_dir=str(tmp_path), bf16=False, report_to=[], temperature=1.0, **keys)


@pytest.fixture
def batch(seeded_policy_dir):
    """A LoRA actor-critic and a rollout batch of 4 completions: the first two with advantage +1 on every token, the
    last two -1; returns 1 everywhere."""
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    actor_critic, reference, tokenizer = build_models(
        seeded_policy_dir, {}, lora, critic_init="policy", reward_paths=[]
    )
    prompts = [[{"role": "user", "content": text}] for text in ("Hi.", "Say yes.", "Count.", "Name a fruit.")]
    torch.manual_seed(0)
    with torch.no_grad():
        rollout = generate_rollout(
            actor_critic.policy,
            tokenizer,
            prompts,
            max_prompt_length=None,
            max_completion_length=6,
            temperature=1.0,
            stop_ids={tokenizer.eos_token_id},
        )
        scored = score_rollout(
            actor_critic, reference, lambda *a, **k: [0.0] * 4, rollout, temperature=1.0, batch_size=4
        )
    mask = rollout.mask
    sign = torch.tensor([1.0, 1.0, -1.0, -1.0])[:, None]
    batch = update_batch(rollout, scored, sign * mask, torch.ones_like(scored.values) * mask)
    return actor_critic, batch


class CountingOptimizer(torch.optim.AdamW):
    """AdamW that counts its steps."""

    steps = 0

    def step(self, closure=None):
        CountingOptimizer.steps += 1
        return super().step(closure)


def test_the_update_takes_epochs_times_mini_batches_steps_and_follows_the_advantages(tmp_path, batch):
    actor_critic, batch = batch
    args = config(tmp_path, num_ppo_epochs=3, num_mini_batches=2, gradient_accumulation_steps=2, learning_rate=1e-2)
    trained = [p for p in actor_critic.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trained]
    accelerator = Accelerator(cpu=True)
    optimizer = CountingOptimizer(trained, lr=args.learning_rate)
    model, optimizer = accelerator.prepare(actor_critic, optimizer)
    mask = batch["mask"]

    # Before any step, the policy is the one that sampled: ratio exactly 1, nothing clipped (dropout is off)
    with torch.no_grad():
        loss, stats = ppo_loss(model, batch, args)
    assert stats["policy/ratio"].item() == pytest.approx(1.0, abs=1e-6)
    assert stats["policy/clipfrac"].item() == 0 and stats["policy/approxkl"].item() == pytest.approx(0, abs=1e-10)
    value_loss_before = stats["loss/value"].item()

    CountingOptimizer.steps = 0
    figures = ppo_update(model, optimizer, accelerator, batch, args)
    assert CountingOptimizer.steps == 3 * 2  # epochs x mini-batches
    # Both adapters and the value head trained (switching peft's active adapter freezes the other one unless undone)
    assert all(not torch.equal(p, b) for p, b in zip(trained, before))
    assert {"loss/total", "loss/policy", "loss/value", "policy/clipfrac", "grad_norm"} <= figures.keys()

    # The completions with a positive advantage became likelier, the negative ones less likely; values moved to returns
    with torch.no_grad():
        logits, values = actor_critic(batch["input_ids"], batch["attention_mask"], mask.shape[1], 1.0)
        logprobs = torch.log_softmax(logits, -1).gather(2, batch["completion_ids"][..., None])[..., 0]
    change = ((logprobs - batch["logprobs"]) * mask).sum(1)
    assert (change[:2] > 0).all() and (change[2:] < 0).all(), change
    assert masked_mean((values - 1) ** 2, mask).item() < 2 * value_loss_before  # the value loss is half that mean


def test_advantages_and_returns_compose_the_kl_shaped_reward_gae_and_whitening(tmp_path):
    generator = torch.Generator().manual_seed(0)
    logprobs, ref, values = (torch.randn(3, 5, generator=generator) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    scored = Scored(logprobs, ref, values, torch.tensor([1.0, -2.0, 0.5]), torch.zeros(3, 5))
    args = config(tmp_path, gamma=0.9, lam=0.8)
    kl, rewards, advantages, returns = advantages_and_returns(scored, mask, 0.1, args)
    torch.testing.assert_close(kl, (logprobs - ref) * mask)
    torch.testing.assert_close(rewards, kl_shaped_rewards(scored.scores, kl, mask, 0.1))
    raw, expected_returns = gae(rewards, values * mask, mask, gamma=0.9, lam=0.8)
    torch.testing.assert_close(returns, expected_returns)  # returns from the raw advantages, not the whitened ones
    torch.testing.assert_close(advantages, whiten(raw, mask))
    assert masked_mean(advantages, mask).item() == pytest.approx(0, abs=1e-6)


def test_the_kl_coefficient_is_fixed_adapts_towards_its_target_and_comes_back_on_resume():
    fixed = KLController(0.05)
    fixed.update(observed_kl=100.0, n_steps=64)
    assert fixed.coef == 0.05
    adaptive = KLController(0.1, target=6.0, horizon=10000)
    adaptive.update(observed_kl=9.0, n_steps=64)
    assert adaptive.coef == pytest.approx(0.1 * (1 + 0.2 * 64 / 10000))

    # The coefficient saved with a checkpoint is the one a resumed run starts from; a fresh run keeps its own
    state = TrainerState(stateful_callbacks={"KLController": adaptive.state()})
    state.global_step = 4
    resumed = KLController(0.1, target=6.0)
    resumed.on_train_begin(None, state, TrainerControl())
    assert resumed.coef == adaptive.coef
    state.global_step = 0
    fresh = KLController(0.1, target=6.0)
    fresh.on_train_begin(None, state, TrainerControl())
    assert fresh.coef == 0.1
