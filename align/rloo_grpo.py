"""RLOO and GRPO against a learned reward model, with over-optimisation guards: TRL's own trainers.

TRL's RLOOTrainer (PPO's clipped surrogate with `epsilon`, `num_iterations` epochs per batch, KL to the reference
with `beta`, and a leave-one-out baseline over `num_generations` samples per prompt instead of a value network) or
GRPOTrainer (group-normalised advantages), chosen by `algorithm`. The reward is one or more `plumb reward train`
models; completions that never end are penalised. KL, length, entropy and ensemble disagreement are watched
against the config's limits: crossing one stops the run, keeps the last good checkpoint and says why (guard.json).
PPO with a critic is `align.ppo`.

    plumb align online --config configs/align/rloo-demo.yaml
    plumb align online --config configs/align/grpo-demo.yaml
"""

import logging

from align.config import OnlineRLScriptArguments
from align.online import finish_run, guard_for, reward_models, training_prompts
from plumb.checkpoints import run_training
from plumb.config import peek_value
from plumb.models import DEFAULT, load_policy, model_init_kwargs, save_trained_policy
from plumb.tracking import setup_tracking

logger = logging.getLogger(__name__)


def config_types(argv: list[str] | None = None) -> tuple:
    """The dataclasses an RLOO or GRPO config fills: RLOOConfig or GRPOConfig as its `algorithm` says."""
    from trl import GRPOConfig, ModelConfig, RLOOConfig

    algorithm = peek_value(argv or [], "algorithm", "rloo")
    return OnlineRLScriptArguments, GRPOConfig if algorithm == "grpo" else RLOOConfig, ModelConfig


def main(script_args: OnlineRLScriptArguments, training_args, model_args) -> dict:
    """Train with TRL's RLOOTrainer or GRPOTrainer against the reward model; returns the metrics of metrics.json."""
    from trl import GRPOTrainer, RLOOTrainer, get_peft_config

    # Policy, prompts, reward and guards
    model_spec = model_args.model_name_or_path or DEFAULT
    model, tokenizer = load_policy(model_spec, merge_adapter=True, **model_init_kwargs(model_args))
    train = training_prompts(script_args)
    reward = reward_models(script_args, tokenizer)
    guard = guard_for(script_args)

    # Training
    stage = f"online-{script_args.algorithm}"
    setup_tracking(training_args, stage=stage)
    trainer_class = GRPOTrainer if script_args.algorithm == "grpo" else RLOOTrainer
    trainer = trainer_class(
        model=model,
        reward_funcs=[reward],
        args=training_args,
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=[guard],
    )
    run_metrics = run_training(trainer, training_args.resume_from_checkpoint, stage=stage)

    # Save: the trained policy, unless a guard tripped; then the last good checkpoint
    merge = bool(model_args.use_peft and script_args.merge_adapter)
    return finish_run(
        trainer,
        run_metrics,
        guard,
        lambda output_dir: save_trained_policy(trainer, tokenizer, output_dir, merge=merge),
        (script_args, training_args, model_args),
        card={
            "algorithm": script_args.algorithm,
            "model_spec": model_spec,
            "summary": f"Trained with TRL's {trainer_class.__name__} against `{script_args.reward_model}`.",
            "tags": ["trl"],
        },
    )
