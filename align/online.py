"""`plumb align online`: online RL against reward models, by algorithm: ppo (Plumb's PPO with a critic, the default),
rloo or grpo (TRL's trainers); and what every algorithm's run shares: the prompts, the reward, the guards, and
the metrics, config and card it leaves in its output folder.

    plumb align online --config configs/align/ppo-demo.yaml
    plumb align online --config configs/align/rloo-demo.yaml
    plumb align online --config configs/align/ppo-demo.yaml --algorithm grpo    # keys each algorithm knows

`plumb align ppo` is this verb with the algorithm fixed to ppo.
"""

import json
import logging
from pathlib import Path

from align.config import OnlineRLScriptArguments
from align.guards import GuardCallback, Limits, keep_last_good
from plumb.cards import metrics_table, write_card
from plumb.config import parse_config, peek_value, save_resolved_config
from plumb.models import DEFAULT

logger = logging.getLogger(__name__)


def config_types(argv: list[str] | None = None) -> tuple:
    """The dataclasses a config fills, as its `algorithm` says (ppo when it says nothing)."""
    algorithm = peek_value(argv or [], "algorithm", "ppo")
    if algorithm == "ppo":
        from align import ppo

        return ppo.config_types()
    from align import rloo_grpo

    return rloo_grpo.config_types(argv)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then train with the config's algorithm."""
    main(*parse_config(config_types(argv), argv, prog=prog))
    return 0


def main(script_args: OnlineRLScriptArguments, training_args, model_args) -> dict:
    """Train with `script_args.algorithm`; returns the metrics written to metrics.json."""
    if script_args.algorithm == "ppo":
        from align import ppo as module
    else:
        from align import rloo_grpo as module
    return module.main(script_args, training_args, model_args)


# What every online run shares


def training_prompts(script_args: OnlineRLScriptArguments):
    """The prompts to train on, as a prompts dataset (`prompt` message lists)."""
    from align.evaluate import load_prompts
    from plumb.data import rows_to_dataset

    prompts = load_prompts(script_args.dataset_name, script_args.dataset_train_split, limit=script_args.max_prompts)
    return rows_to_dataset([{"prompt": prompt} for prompt in prompts], source=script_args.dataset_name)


def reward_models(script_args: OnlineRLScriptArguments, tokenizer):
    """The reward: the config's reward model(s), their mean, minus the unfinished penalty when no stop token ends it."""
    from align.rewards import RewardModels

    stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}
    return RewardModels(script_args.reward_model, stop_ids=stop_ids, unfinished_penalty=script_args.unfinished_penalty)


def guard_for(script_args: OnlineRLScriptArguments) -> GuardCallback:
    """The over-optimisation guard with the config's limits."""
    return GuardCallback(
        Limits(
            script_args.max_kl,
            script_args.max_mean_length,
            script_args.min_entropy,
            script_args.max_reward_disagreement,
        )
    )


def finish_run(trainer, run_metrics: dict, guard: GuardCallback, save_policy, configs: tuple, card: dict) -> dict:
    """After training: save the policy (`save_policy(output_dir)`) unless a guard tripped, else keep the last good
    checkpoint; write metrics.json, the resolved config and the card. Returns the metrics."""
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
    output_dir = Path(trainer.args.output_dir)
    if guard.tripped is None:
        save_policy(output_dir)  # on every process: a sharded model gathers its weights from all of them
    else:
        metrics["guard_reasons"] = guard.tripped["reasons"]
    if not trainer.accelerator.is_main_process:
        return metrics
    if guard.tripped is not None:
        metrics["kept"] = str(keep_last_good(output_dir, guard))
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    save_resolved_config(output_dir, *configs)
    shown = metrics_table({k: v for k, v in metrics.items() if not isinstance(v, list)})
    model_spec = card["model_spec"]
    write_card(
        output_dir,
        title=f"Online RL ({card['algorithm'].upper()}) policy from {model_spec}",
        summary=card["summary"],
        metadata={
            "base_model": None if model_spec == DEFAULT else model_spec,
            "tags": ["plumb", *card["tags"], card["algorithm"]],
        },
        sections={"Training": shown},
    )
    logger.info("Saved to %s\n%s", output_dir.resolve(), shown)
    return metrics
