"""PPO-style online RL against a learned reward model, with over-optimisation guards.

TRL 1.16 has no PPOTrainer (removed upstream). This runs TRL's RLOOTrainer (default: PPO's
clipped surrogate with `epsilon`, `num_iterations` PPO epochs per batch, KL to the
reference with `beta`, and a leave-one-out baseline instead of a value network) or
GRPOTrainer (group-normalised advantages), chosen by `algorithm`. The reward is one or
more `plumb reward train` models; completions that never end are penalised. KL, length,
entropy and ensemble disagreement are watched against the config's limits: crossing one
stops the run, keeps the last good checkpoint and says why (guard.json).

    plumb align ppo --config configs/align/ppo-demo.yaml
"""

import json
import logging
from pathlib import Path

from align.config import OnlineRLScriptArguments
from align.guards import GuardCallback, Limits, keep_last_good
from plumb.cards import metrics_table, write_card
from plumb.checkpoints import run_training
from plumb.config import parse_config, peek_value, save_resolved_config
from plumb.models import DEFAULT, load_policy, model_init_kwargs, save_trained_policy
from plumb.tracking import setup_tracking

logger = logging.getLogger(__name__)


def config_types(argv: list[str] | None = None) -> tuple:
    """The dataclasses a `plumb align ppo` config fills: RLOOConfig or GRPOConfig as its `algorithm` says."""
    from trl import GRPOConfig, ModelConfig, RLOOConfig

    algorithm = peek_value(argv or [], "algorithm", "rloo")
    return OnlineRLScriptArguments, GRPOConfig if algorithm == "grpo" else RLOOConfig, ModelConfig


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then train."""
    main(*parse_config(config_types(argv), argv, prog=prog))
    return 0


def main(script_args: OnlineRLScriptArguments, training_args, model_args) -> dict:
    """Train online against the reward model; returns the metrics written to metrics.json."""
    from trl import GRPOTrainer, RLOOTrainer, get_peft_config

    from align.evaluate import load_prompts
    from align.rewards import RewardModels
    from plumb.data import rows_to_dataset

    # Policy
    model_spec = model_args.model_name_or_path or DEFAULT
    model, tokenizer = load_policy(model_spec, merge_adapter=True, **model_init_kwargs(model_args))

    # Prompts and the reward
    prompts = load_prompts(script_args.dataset_name, script_args.dataset_train_split, limit=script_args.max_prompts)
    train = rows_to_dataset([{"prompt": prompt} for prompt in prompts], source=script_args.dataset_name)
    stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    reward = RewardModels(
        script_args.reward_model, stop_ids=stop_ids, unfinished_penalty=script_args.unfinished_penalty
    )
    guard = GuardCallback(
        Limits(
            script_args.max_kl,
            script_args.max_mean_length,
            script_args.min_entropy,
            script_args.max_reward_disagreement,
        )
    )

    # Training
    setup_tracking(training_args, stage=f"ppo-{script_args.algorithm}")
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
    run_metrics = run_training(trainer, training_args.resume_from_checkpoint, stage=f"ppo-{script_args.algorithm}")
    # After a resume the log holds the steps before the checkpoint too, so these cover the whole run.
    history = [entry for entry in trainer.state.log_history if "reward" in entry]
    metrics = {
        **run_metrics,
        "steps": trainer.state.global_step,
        "first_reward": history[0]["reward"] if history else None,
        "last_reward": history[-1]["reward"] if history else None,
        "last_kl": history[-1].get("kl") if history else None,
        "guard_tripped": guard.tripped is not None,
    }

    # Save: the trained policy, unless a guard tripped; then the last good checkpoint
    output_dir = Path(training_args.output_dir)
    if guard.tripped is None:
        save_trained_policy(
            trainer, tokenizer, output_dir, merge=bool(model_args.use_peft and script_args.merge_adapter)
        )
    else:
        metrics["kept"] = str(keep_last_good(output_dir, guard))
        metrics["guard_reasons"] = guard.tripped["reasons"]
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    save_resolved_config(output_dir, script_args, training_args, model_args)
    write_card(
        output_dir,
        title=f"Online RL ({script_args.algorithm.upper()}) policy from {model_spec}",
        summary=f"Trained with TRL's {trainer_class.__name__} against `{script_args.reward_model}`.",
        metadata={
            "base_model": None if model_spec == DEFAULT else model_spec,
            "tags": ["plumb", "trl", script_args.algorithm],
        },
        sections={"Training": metrics_table({k: v for k, v in metrics.items() if not isinstance(v, list)})},
    )
    logger.info(
        "Saved to %s\n%s",
        output_dir.resolve(),
        metrics_table({k: v for k, v in metrics.items() if not isinstance(v, list)}),
    )
    return metrics
