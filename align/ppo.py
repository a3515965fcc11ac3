"""`plumb align ppo`: PPO with a critic against learned reward models, with over-optimisation guards.

Plumb's own PPO on transformers, peft and accelerate (TRL 1.16 has none): the actor (the policy), a critic (a
value head, from the reward model or the policy, as `critic_init` says), the frozen reference and the frozen
reward model(s). Per token a KL penalty to the reference, the reward model's score at the last token, GAE,
whitened advantages, clipped policy and value losses, several epochs over mini-batches of each rollout, and a
penalty for completions that never end. With LoRA, actor and critic are two adapters on one frozen base and the
reference is that base with the adapters off. The pieces: `ppo_math` (the arithmetic), `ppo_models` (the models),
`ppo_rollout` (sampling and scoring), `ppo_trainer` (the loop); the keys: `ppo_config.PPOConfig`.

    plumb align ppo --config configs/align/ppo-demo.yaml
    accelerate launch --config_file configs/accelerate/multi-gpu.yaml -m plumb align ppo --config FILE

RLOO and GRPO (TRL's trainers): `plumb align online --algorithm rloo|grpo` (`align.rloo_grpo`).
"""

import logging

from align.config import OnlineRLScriptArguments
from align.online import finish_run, guard_for, reward_models, training_prompts
from align.ppo_config import PPOConfig
from plumb.checkpoints import run_training
from plumb.config import ConfigError, parse_config, peek_value
from plumb.models import DEFAULT, model_init_kwargs
from plumb.tracking import setup_tracking

logger = logging.getLogger(__name__)


def config_types(argv: list[str] | None = None) -> tuple:
    """The dataclasses a PPO config fills; a config for another algorithm is refused with the verb that runs it."""
    from trl import ModelConfig

    algorithm = peek_value(argv or [], "algorithm", "ppo")
    if algorithm != "ppo":
        raise ConfigError(
            f"algorithm: {algorithm}: `plumb align ppo` runs PPO; run {algorithm} with "
            f"`plumb align online --algorithm {algorithm}` (the same config keys as before)"
        )
    return OnlineRLScriptArguments, PPOConfig, ModelConfig


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then train."""
    main(*parse_config(config_types(argv), argv, prog=prog))
    return 0


def main(script_args: OnlineRLScriptArguments, training_args: PPOConfig, model_args, *, reward=None) -> dict:
    """Train the policy with PPO against the reward model(s); returns the metrics written to metrics.json.

    `reward`: a TRL-style reward function to climb instead of `script_args.reward_model` (e.g. in tests).
    """
    from transformers import set_seed
    from trl import get_peft_config

    from align.ppo_models import build_models, save_final_policy
    from align.ppo_trainer import PPOTrainer
    from reward.score import model_paths

    if model_args.use_peft and training_args.gradient_checkpointing:
        # The backward pass would recompute the actor's layers with whichever adapter is active by then.
        raise ConfigError("gradient_checkpointing: PPO with LoRA (actor and critic adapters on one base) needs it off")

    # Models: actor and critic (one base with two adapters under LoRA), reference, reward. Seeded first: the new
    # adapters and value head start from random numbers, and a rerun with the same seed is the same run.
    set_seed(training_args.seed)
    model_spec = model_args.model_name_or_path or DEFAULT
    reward_paths = [] if reward is not None else model_paths(script_args.reward_model)
    actor_critic, reference, tokenizer = build_models(
        model_spec,
        model_init_kwargs(model_args),
        get_peft_config(model_args),
        critic_init="policy" if reward is not None else training_args.critic_init,
        reward_paths=reward_paths,
    )
    if training_args.disable_dropout:  # N+: deterministic log-probs, so the first PPO ratio is exactly 1
        from trl.trainer.utils import disable_dropout_in_model

        for model in (actor_critic, reference):
            if model is not None:
                disable_dropout_in_model(model)
    reward = reward if reward is not None else reward_models(script_args, tokenizer)
    guard = guard_for(script_args)

    # Training
    setup_tracking(training_args, stage="ppo")
    trainer = PPOTrainer(
        model=actor_critic,
        reference=reference,
        reward=reward,
        args=training_args,
        train_dataset=training_prompts(script_args),
        processing_class=tokenizer,
        callbacks=[guard],
    )
    run_metrics = run_training(trainer, training_args.resume_from_checkpoint, stage="ppo")

    # Save: the trained policy (and its critic), unless a guard tripped; then the last good checkpoint
    merge = bool(model_args.use_peft and script_args.merge_adapter)

    def save_policy(output_dir) -> None:
        if trainer.accelerator.is_main_process:
            save_final_policy(trainer.accelerator.unwrap_model(trainer.model), output_dir, tokenizer, merge=merge)

    return finish_run(
        trainer,
        run_metrics,
        guard,
        save_policy,
        (script_args, training_args, model_args),
        card={
            "algorithm": "ppo",
            "model_spec": model_spec,
            "summary": f"Trained with Plumb's PPO (critic, GAE, clipped losses) against `{script_args.reward_model}`.",
            "tags": ["ppo"],
        },
    )
