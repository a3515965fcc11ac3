"""The PPO training loop: transformers' Trainer, whose every step is one PPO iteration.

`PPOTrainer.training_step` reads top to bottom: roll out, score, shape the reward and estimate advantages, update
the actor and critic for several epochs, adjust the KL coefficient. The Trainer around it brings what every Plumb
stage has: the optimizer and its learning-rate schedule (annealed per rollout, N+), checkpoints and resuming,
callbacks (the over-optimisation guards), W&B and TensorBoard, `accelerate launch` for several GPUs.
"""

import contextlib
import copy
import logging
from collections import defaultdict

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import print_prompt_completions_sample, selective_log_softmax

from align.ppo_config import PPOConfig
from align.ppo_math import (
    adaptive_kl_coef,
    clipped_policy_loss,
    clipped_value_loss,
    gae,
    kl_shaped_rewards,
    masked_mean,
    per_token_kl,
    whiten,
)
from align.ppo_models import ActorCritic, load_actor_critic, save_actor_critic
from align.ppo_rollout import generate_rollout, score_rollout

logger = logging.getLogger(__name__)


class KLController(TrainerCallback, ExportableState):
    """The KL coefficient of the reward: fixed, or adapted after each rollout (Ziegler et al., 2019). A class because
    the coefficient changes as training goes and is saved in every checkpoint, so a resumed run goes on from it."""

    def __init__(self, coef: float, target: float | None = None, horizon: int = 10000):
        self.coef, self.target, self.horizon = coef, target, horizon

    def update(self, observed_kl: float, n_steps: int) -> None:
        """After a rollout of `n_steps` completions whose mean KL per completion was `observed_kl`."""
        if self.target is not None:
            self.coef = adaptive_kl_coef(
                self.coef, observed_kl, target=self.target, horizon=self.horizon, n_steps=n_steps
            )

    def state(self) -> dict:
        """What the checkpoint's trainer_state.json keeps of this callback."""
        return {"args": {"target": self.target, "horizon": self.horizon}, "attributes": {"coef": self.coef}}

    def on_train_begin(self, args, state, control, **kwargs):
        """On a resume, take the coefficient saved with the checkpoint."""
        saved = state.stateful_callbacks.get(type(self).__name__) if state.global_step else None
        saved = saved[0] if isinstance(saved, list) else saved
        if saved:
            self.coef = saved["attributes"]["coef"]
        return control


def ppo_loss(model, batch: dict, args: PPOConfig) -> tuple[torch.Tensor, dict]:
    """pg_loss + vf_coef * vf_loss on a micro-batch of the rollout, with the figures logged about it."""
    mask = batch["mask"]
    logits, values = model(
        batch["input_ids"], batch["attention_mask"], completion_length=mask.shape[1], temperature=args.temperature
    )
    logprobs = selective_log_softmax(logits, batch["completion_ids"])
    pg_loss, pg_stats = clipped_policy_loss(logprobs, batch["logprobs"], batch["advantages"], mask, args.cliprange)
    vf_loss, vf_clipfrac = clipped_value_loss(values, batch["values"], batch["returns"], mask, args.cliprange_value)
    loss = pg_loss + args.vf_coef * vf_loss
    stats = {
        "loss/policy": pg_loss,
        "loss/value": vf_loss,
        "policy/clipfrac": pg_stats["clipfrac"],
        "policy/approxkl": pg_stats["approxkl"],
        "policy/ratio": pg_stats["ratio"],
        "value/clipfrac": vf_clipfrac,
    }
    return loss, {key: value.detach() for key, value in {"loss/total": loss, **stats}.items()}


def ppo_update(model, optimizer, accelerator, batch: dict, args: PPOConfig) -> dict[str, float]:
    """PPO's update on one rollout: `num_ppo_epochs` shuffled passes (N+), each in `num_mini_batches` optimizer steps
    of `gradient_accumulation_steps` micro-batches, gradients clipped to `max_grad_norm`. Returns each figure's mean
    over the micro-batches (grad_norm: over the optimizer steps)."""
    rows = len(batch["mask"])
    figures = defaultdict(list)
    for _ in range(args.num_ppo_epochs):
        order = torch.randperm(rows, device=batch["mask"].device)
        for mini_batch in order.tensor_split(min(args.num_mini_batches, rows)):
            micro_batches = mini_batch.tensor_split(min(args.gradient_accumulation_steps, len(mini_batch)))
            for i, micro_batch in enumerate(micro_batches):
                # Gradients are exchanged between GPUs once per optimizer step, on its last micro-batch (the flag
                # tells accelerate, and DeepSpeed through it, the same as the Trainer's own accumulation does).
                last = i == len(micro_batches) - 1
                accelerator.gradient_state._set_sync_gradients(last)
                with contextlib.nullcontext() if last else accelerator.no_sync(model):
                    loss, stats = ppo_loss(model, {key: value[micro_batch] for key, value in batch.items()}, args)
                    accelerator.backward(loss / len(micro_batches))
                for key, value in stats.items():
                    figures[key].append(value.item())
            if args.max_grad_norm and args.max_grad_norm > 0:
                figures["grad_norm"].append(float(accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    return {key: sum(values) / len(values) for key, values in figures.items()}


def update_batch(rollout, scored, advantages: torch.Tensor, returns: torch.Tensor) -> dict[str, torch.Tensor]:
    """What `ppo_update` reads of a scored rollout: its tokens and mask, the old log-probs and values, the targets."""
    return {
        "input_ids": rollout.input_ids,
        "attention_mask": rollout.attention_mask,
        "completion_ids": rollout.completion_ids,
        "mask": rollout.mask,
        "logprobs": scored.logprobs,
        "values": scored.values,
        "advantages": advantages,
        "returns": returns,
    }


def advantages_and_returns(scored, mask: torch.Tensor, kl_coef: float, args: PPOConfig) -> tuple[torch.Tensor, ...]:
    """(per-token KL, rewards, advantages, returns) of a scored rollout: the KL-shaped reward, then GAE, whitened."""
    kl = per_token_kl(scored.logprobs, scored.ref_logprobs, args.kl_estimator) * mask
    rewards = kl_shaped_rewards(scored.scores, kl, mask, kl_coef)
    if args.whiten_rewards:
        rewards = whiten(rewards, mask, shift_mean=False)
    advantages, returns = gae(rewards, scored.values * mask, mask, gamma=args.gamma, lam=args.lam)
    if args.whiten_advantages:
        advantages = whiten(advantages, mask)
    return kl, rewards, advantages, returns


class PPOTrainer(Trainer):
    """transformers' Trainer whose training step is a PPO iteration on a batch of prompts.

    A class because the Trainer is one; the state PPO adds is the reference, the reward and the KL coefficient.
    The Trainer sees one rollout per step and no gradient accumulation or clipping of its own: PPO's update
    takes its own optimizer steps inside the step (with the user's accumulation and clipping settings).
    """

    def __init__(
        self, *, model: ActorCritic, reference, reward, args: PPOConfig, train_dataset, processing_class, callbacks=()
    ):
        self.ppo_args = args
        outer = copy.copy(args)
        outer.gradient_accumulation_steps, outer.max_grad_norm, outer.remove_unused_columns = 1, 0.0, False
        kl_control = KLController(args.kl_coef, args.kl_target, args.kl_horizon)
        super().__init__(
            model=model,
            args=outer,
            train_dataset=train_dataset,
            data_collator=lambda rows: rows,  # the prompts as they are; the rollout tokenizes them
            processing_class=processing_class,
            callbacks=[kl_control, *callbacks],
        )
        self._train_batch_size = args.rollout_batch_size  # the dataloader yields one rollout's prompts per step
        self.reference = reference.to(self.accelerator.device) if reference is not None else None
        self.reward = reward
        for reward_model, _ in getattr(reward, "models", []):
            reward_model.to(self.accelerator.device)
        tokenizer = processing_class
        self.stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._samples: dict = {}
        self._vllm = None

    @property
    def kl_control(self) -> KLController:
        """The KL controller among the callbacks (a resume may have swapped in a new instance)."""
        return next(cb for cb in self.callback_handler.callbacks if isinstance(cb, KLController))

    def training_step(self, model, inputs: list[dict], num_items_in_batch=None) -> torch.Tensor:
        """One PPO iteration on a batch of prompts; returns the mean loss of its update."""
        args = self.ppo_args
        actor_critic = self.accelerator.unwrap_model(model)
        prompts = [row["prompt"] for row in inputs]

        # 1. Rollout: the actor samples a completion for each prompt
        actor_critic.eval()
        with (
            torch.no_grad(),
            unwrap_model_for_generation(
                model, self.accelerator, gather_deepspeed3_params=args.ds3_gather_for_generation
            ) as unwrapped,
        ):
            rollout = generate_rollout(
                unwrapped.policy,
                self.processing_class,
                prompts,
                max_prompt_length=args.max_prompt_length,
                max_completion_length=args.max_completion_length,
                temperature=args.temperature,
                stop_ids=self.stop_ids,
                vllm=self._vllm_generation(actor_critic),
            )

        # 2. Scoring: log-probs under the actor and the reference, the critic's values, the reward model's scores
        scored = score_rollout(
            actor_critic,
            self.reference,
            self.reward,
            rollout,
            temperature=args.temperature,
            batch_size=args.local_rollout_forward_batch_size,
            log_metric=lambda key, value: self._metrics[key].append(value),
        )

        # 3. Advantages: the KL-shaped per-token reward, then GAE; whitened
        mask = rollout.mask
        kl, _, advantages, returns = advantages_and_returns(scored, mask, self.kl_control.coef, args)

        # 4. Update: PPO epochs over the rollout, clipped policy and value losses
        actor_critic.train()
        batch = update_batch(rollout, scored, advantages, returns)
        update = ppo_update(model, self.optimizer, self.accelerator, batch, args)

        # 5. The KL coefficient for the next rollout, and the figures for the log
        kl_per_completion = self.accelerator.gather(kl.sum(1)).mean().item()
        self.record(rollout, scored, kl, advantages, update, kl_per_completion)
        self.kl_control.update(kl_per_completion, n_steps=len(prompts) * self.accelerator.num_processes)
        return torch.tensor(update["loss/total"], device=self.args.device)

    def _vllm_generation(self, actor_critic: ActorCritic):
        """TRL's vLLM generator with the actor's current weights, when `use_vllm`; None otherwise."""
        args = self.ppo_args
        if not args.use_vllm:
            return None
        if self._vllm is None:
            from trl.generation.vllm_generation import VLLMGeneration

            self._vllm = VLLMGeneration(
                model=actor_critic.policy,
                accelerator=self.accelerator,
                processing_class=self.processing_class,
                mode=args.vllm_mode,
                server_base_url=args.vllm_server_base_url,
                gpu_memory_utilization=args.vllm_gpu_memory_utilization,
                tensor_parallel_size=args.vllm_tensor_parallel_size,
                max_model_length=args.max_prompt_length and args.max_prompt_length + args.max_completion_length,
                temperature=args.temperature,
                top_p=1.0,
                top_k=0,
                max_completion_length=args.max_completion_length,
            )
        self._vllm.sync_weights()  # the actor changed in the last update (LoRA: merged into the base it sends)
        return self._vllm

    def record(self, rollout, scored, kl, advantages, update: dict, kl_per_completion: float) -> None:
        """Keep a rollout's figures until the next log, averaged over the processes. The guards read kl, the mean KL
        per token to the reference (as RLOO/GRPO log it; here by k3, never below 0, whatever shapes the reward),
        completions/mean_length and entropy; objective/kl is the KL per completion the reward subtracts."""
        gather = self.accelerator.gather
        mask = rollout.mask.float()
        lengths = gather(mask.sum(1))
        scores = gather(scored.scores)
        k3 = per_token_kl(scored.logprobs, scored.ref_logprobs, "k3") * mask
        figures = {
            "reward": scores.mean().item(),
            "reward_std": scores.std().item() if len(scores) > 1 else 0.0,
            "kl": (gather(k3.sum()[None]).sum() / gather(mask.sum()[None]).sum().clamp(min=1)).item(),
            "objective/kl": kl_per_completion,
            "objective/rlhf_reward": (scores - self.kl_control.coef * gather(kl.sum(1))).mean().item(),
            "kl_coef": self.kl_control.coef,
            "entropy": gather(masked_mean(scored.entropy, mask)[None]).mean().item(),
            "completions/mean_length": lengths.mean().item(),
            "value/mean": gather(masked_mean(scored.values, mask)[None]).mean().item(),
            **update,
        }
        for key, value in figures.items():
            self._metrics[key].append(value)
        if self.ppo_args.log_completions:
            first_advantage = advantages[:, 0]
            self._samples = {
                "prompt": rollout.prompts,
                "completion": rollout.completions,
                "rewards": {"reward": scored.scores.tolist()},
                "advantages": first_advantage.tolist(),
            }

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the PPO figures since the last log (their means) to what the Trainer logs, then the completions table."""
        logs.update({key: sum(values) / len(values) for key, values in self._metrics.items() if values})
        self._metrics.clear()
        super().log(logs, start_time)
        if self._samples and self.accelerator.is_main_process:
            self.log_completions_table()
            self._samples = {}

    def log_completions_table(self) -> None:
        """Print the last rollout's prompts, completions, rewards and advantages, and send them to W&B when it runs."""
        samples = self._samples
        print_prompt_completions_sample(
            samples["prompt"],
            samples["completion"],
            samples["rewards"],
            samples["advantages"],
            self.state.global_step,
            self.ppo_args.num_completions_to_print,
        )
        if "wandb" in (self.args.report_to or []):
            import pandas as pd
            import wandb

            if wandb.run is not None:
                table = {
                    "step": [self.state.global_step] * len(samples["prompt"]),
                    "prompt": [str(p) for p in samples["prompt"]],
                    "completion": samples["completion"],
                    **samples["rewards"],
                    "advantage": samples["advantages"],
                }
                wandb.log({"completions": wandb.Table(dataframe=pd.DataFrame(table))})

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """Save a checkpoint as Plumb loads a policy: the actor (adapter or model), its tokenizer, critic/ beside."""
        if not self.args.should_save:
            return
        output_dir = output_dir or self.args.output_dir
        save_actor_critic(self.accelerator.unwrap_model(self.model), output_dir, self.processing_class)
        torch.save(self.ppo_args, f"{output_dir}/training_args.bin")

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Load the actor and critic `_save` wrote (a resume)."""
        load_actor_critic(self.accelerator.unwrap_model(model or self.model), resume_from_checkpoint)
