"""Train a reward model on pairwise preferences or rankings with TRL's RewardTrainer.

The backbone is an encoder (the offline default all-MiniLM-L6-v2, or any BERT/DeBERTa-style
model) or a decoder LM given a one-output sequence-classification head; full fine-tuning or
LoRA (`use_peft: true`, merged at the end). Pairs are tokenized by Plumb, keeping the end of
long conversations (see reward/encoding.py); `margin` enters the loss when the data has it.
Rankings (prompt, completions, ranks) are expanded to their pairs (`ranking_loss: pairwise`,
ties give none) or trained whole with the Plackett-Luce loss (`ranking_loss: plackett_luce`,
reward/listwise.py). After training, the held-out pairs (held-out rankings expanded, whatever
the loss) get Plumb's full evaluation (accuracy with its interval, calibration, length bias),
written beside the model with the card and the resolved config.

    plumb reward train --config configs/reward/demo.yaml
    accelerate launch --config_file configs/accelerate/multi-gpu.yaml -m plumb reward train --config ...
"""

import json
import logging
from pathlib import Path

from plumb import hp_search
from plumb.cards import metrics_table
from plumb.checkpoints import run_training
from plumb.config import ConfigError, parse_config, save_resolved_config
from plumb.data import DataError, load_train_test, ranking_to_pairs, to_conversational
from plumb.models import DEFAULT, load_reward_backbone, model_init_kwargs
from plumb.tracking import setup_tracking
from reward.config import RewardScriptArguments
from reward.encoding import log_truncation, tokenize_pairs
from reward.evaluate import evaluate_scores, format_table, score_pairs, write_report
from reward.push import write_reward_card

logger = logging.getLogger(__name__)

SUMMARY_KEYS = (
    "accuracy",
    "accuracy_ci95",
    "ece",
    "length_baseline_accuracy",
    "reward_length_spearman",
    "agreement_ceiling",
)


def config_types() -> tuple:
    """The dataclasses a `plumb reward train` config fills, in the order `main` takes them."""
    from trl import ModelConfig, RewardConfig

    return RewardScriptArguments, RewardConfig, ModelConfig


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then train."""
    main(*parse_config(config_types(), argv, prog=prog), config_file=hp_search.config_file(argv))
    return 0


def main(script_args: RewardScriptArguments, training_args, model_args, *, config_file: str | None = None) -> dict:
    """Train, evaluate on the held-out pairs and save; returns the metrics written to metrics.json.

    With `hp_search`, run the Optuna search instead and return its summary (see `search`)."""
    from transformers import set_seed
    from trl import RewardTrainer, get_peft_config

    from reward import listwise

    # Dataset: checked before the model loads, so a bad file fails in a second, not after the model has loaded
    listwise_loss = script_args.ranking_loss == "plackett_luce"
    space, base_config = hp_search.prepare(
        script_args,
        training_args,
        model_args,
        config_file=config_file,
        training_keys=TRAINING_SEARCH_KEYS,
        model_keys=MODEL_SEARCH_KEYS,
    )
    if space is not None and model_args.use_peft:
        raise ConfigError("hp_search in plumb reward train does not support use_peft yet")
    train, test, data_counts = load_reward_data(script_args, seed=training_args.seed)
    if space is not None:
        hp_search.require_held_out(test, what="pairs")

    # Model & tokenizer: the new reward head starts random, so seed before building it
    set_seed(training_args.seed)
    model_spec = model_args.model_name_or_path or DEFAULT
    model, tokenizer = load_reward_backbone(model_spec, **model_init_kwargs(model_args))
    model_args.lora_task_type = "SEQ_CLS"  # so LoRA trains the reward head too (TRL's default is CAUSAL_LM)
    if script_args.freeze_layers and not model_args.use_peft:
        freeze_bottom(model, script_args.freeze_layers)

    # Tokenized by Plumb (as message lists), so long pairs and rankings keep their end
    if listwise_loss:
        train_ids, train_cut = listwise.tokenize_rankings(train, tokenizer, training_args.max_length)
        log_ranking_truncation(train_cut, max_length=training_args.max_length)
    else:
        train_ids, train_cut = tokenize_pairs(
            train, tokenizer, training_args.max_length, use_margin=script_args.use_margin
        )
        log_truncation(train_cut, name="train", max_length=training_args.max_length)
    eval_ids = None
    if test is not None:
        eval_ids, eval_cut = tokenize_pairs(
            test, tokenizer, training_args.max_length, use_margin=script_args.use_margin
        )
        log_truncation(eval_cut, name="held-out", max_length=training_args.max_length)

    # Training
    callbacks = configure_model_selection(training_args, script_args, has_eval=eval_ids is not None)
    training_args.remove_unused_columns = False  # keep `length` for length-grouped batches; the collator ignores it
    setup_tracking(training_args, stage="reward")
    trainer_class = listwise.PlackettLuceTrainer if listwise_loss else RewardTrainer
    trainer = trainer_class(
        model=model,
        args=training_args,
        train_dataset=train_ids,
        eval_dataset=eval_ids,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=callbacks,
    )
    if space is not None:
        return search(trainer, script_args, model_args, space, base_config)
    run_metrics = run_training(trainer, training_args.resume_from_checkpoint, stage="reward")
    metrics = {
        **run_metrics,
        "ranking_loss": script_args.ranking_loss,
        **data_counts,
        **{f"train_{k}": v for k, v in train_cut.as_metrics().items()},
    }

    # Save
    output_dir = Path(training_args.output_dir)
    merge = bool(model_args.use_peft and script_args.merge_adapter)
    reward_model = save_reward_model(trainer, tokenizer, output_dir, merge=merge)
    save_resolved_config(output_dir, script_args, training_args, model_args)

    # Evaluation on the held-out pairs with the saved model's own scoring path
    if test is not None:
        report = evaluate_held_out(reward_model, tokenizer, test, training_args, script_args, output_dir)
        metrics.update({f"eval_{k}": report[k] for k in SUMMARY_KEYS if k in report})
        metrics.update({f"eval_{k}": v for k, v in eval_cut.as_metrics().items()})
        logger.info("Held-out evaluation:\n%s", format_table(report))
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    write_reward_card(output_dir)
    logger.info("Saved to %s\n%s", output_dir.resolve(), metrics_table(metrics))
    return metrics


# Searchable keys: TrainingArguments fields Trainer sets per trial, and freeze_layers, applied when the model is built.
TRAINING_SEARCH_KEYS = (*hp_search.TRAINING_KEYS, "center_rewards_coefficient")
MODEL_SEARCH_KEYS = ("freeze_layers",)


def search(trainer, script_args, model_args, space: dict, base_config: dict) -> dict:
    """Run the trials (held-out eval_accuracy, maximized), write best_config.yaml and hp_search.png; the summary."""
    from transformers import set_seed
    from trl.trainer.utils import disable_dropout_in_model

    model_spec = model_args.model_name_or_path or DEFAULT

    def model_init(values: dict):
        # Trainer sets the seed before it calls this, and the trial's seed (when searched) only after.
        set_seed(values.get("seed", base_config["seed"]))
        model, _ = load_reward_backbone(model_spec, **model_init_kwargs(model_args))
        layers = values.get("freeze_layers", script_args.freeze_layers)
        if layers:
            freeze_bottom(model, layers)
        if trainer.args.disable_dropout:  # RewardTrainer does this in __init__, to the first model only
            disable_dropout_in_model(model)
        return model

    return hp_search.run_search(
        trainer,
        space=space,
        base_config=base_config,
        training_keys=TRAINING_SEARCH_KEYS,
        model_init=model_init,
        metric="eval_accuracy",
        direction="maximize",
        trials=script_args.hp_trials,
        stage="reward",
        command="plumb reward train",
    )


def load_reward_data(script_args: RewardScriptArguments, *, seed: int):
    """(train, held-out pairs or None, counts): pairs or rankings, as message lists, shaped for the ranking loss.

    The held-out split is by prompt; held-out rankings are expanded to pairs, so both losses are measured alike.
    """
    train, test = load_train_test(
        script_args.dataset_name,
        ("pairwise", "ranking"),
        train_split=script_args.dataset_train_split,
        test_split=script_args.dataset_test_split,
        test_size=script_args.test_size,
        seed=seed,
    )
    counts = {"train_rankings": len(train)} if "completions" in train.column_names else {}
    if test is not None and "completions" in test.column_names:
        counts["eval_rankings"] = len(test)
        test = ranking_to_pairs(test)
        if not len(test):
            logger.warning("The held-out rankings are all ties: no pairs to evaluate on.")
            test = None
    if test is not None:
        test = to_conversational(test)
    train = shape_for_loss(train, script_args)
    held_out = len(test) if test is not None else "none"
    unit = "rankings" if script_args.ranking_loss == "plackett_luce" else "pairs"
    logger.info("Reward data: %d training %s, %s pairs held out", len(train), unit, held_out)
    return train, test, counts


def shape_for_loss(train, script_args: RewardScriptArguments):
    """Training rows as the loss takes them: pairs (rankings expanded, ties dropped) or rankings (pairs are K=2)."""
    from reward import listwise

    is_ranking = "completions" in train.column_names
    if script_args.ranking_loss == "plackett_luce":
        if is_ranking:
            return listwise.ranking_to_conversational(train)
        if script_args.use_margin and "margin" in train.column_names:
            logger.info("plackett_luce has no margin term: the pairs' `margin` column is not used.")
        return listwise.pairs_to_rankings(to_conversational(train))
    if is_ranking:
        pairs = ranking_to_pairs(train)
        if not len(pairs):
            raise DataError(f"{script_args.dataset_name}: the training rankings are all ties, so they give no pairs")
        logger.info("Expanded %d rankings into %d pairs (ties give none)", len(train), len(pairs))
        train = pairs
    return to_conversational(train)


def log_ranking_truncation(count, *, max_length: int | None) -> None:
    """Say how many ranked completions were cut to max_length (from the left), as `log_truncation` does for pairs."""
    if count.truncated_completions:
        logger.info(
            "train: %d of %d completions (%.0f%%) were longer than max_length=%s with their prompt and lost their "
            "oldest tokens; %d responses were themselves longer than that.",
            count.truncated_completions,
            count.completions,
            100 * count.truncated_completions / count.completions,
            max_length,
            count.responses_cut,
        )


def configure_model_selection(training_args, script_args, *, has_eval: bool) -> list:
    """Evaluation, early stopping on held-out accuracy and best-checkpoint selection; returns the callbacks."""
    from transformers import EarlyStoppingCallback

    if not has_eval:
        training_args.eval_strategy = "no"
    patience = script_args.early_stopping_patience
    if not patience:
        return []
    if training_args.eval_strategy == "no" or training_args.save_strategy != training_args.eval_strategy:
        raise ConfigError(
            "early_stopping_patience needs held-out data and eval_strategy and save_strategy both 'steps' or both "
            f"'epoch' (got eval_strategy={training_args.eval_strategy}, save_strategy={training_args.save_strategy})"
        )
    training_args.load_best_model_at_end = True
    training_args.metric_for_best_model = "eval_accuracy"
    training_args.greater_is_better = True
    return [EarlyStoppingCallback(early_stopping_patience=patience)]


def freeze_bottom(model, layers: int) -> None:
    """Freeze the token embeddings and the lowest `layers` transformer blocks of a backbone."""
    import torch

    count = model.config.num_hidden_layers
    if not 0 < layers <= count:
        raise ConfigError(f"freeze_layers must be between 1 and the model's {count} layers, got {layers}")
    blocks = next(m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m) == count)
    model.get_input_embeddings().requires_grad_(False)
    for block in blocks[:layers]:
        block.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info(
        "Froze the embeddings and %d of %d blocks: %.1fM parameters left to train", layers, count, trainable / 1e6
    )


def save_reward_model(trainer, tokenizer, output_dir: Path, *, merge: bool):
    """Save the model (a LoRA adapter merged into its backbone when `merge`) with its tokenizer; returns the model."""
    model = trainer.model
    if merge:
        model = model.merge_and_unload()
        model.save_pretrained(output_dir)
    else:
        trainer.save_model(str(output_dir))
    # The tokenizer carries the chat template and eos Plumb gave it, so the folder scores conversations by itself.
    tokenizer.save_pretrained(output_dir)
    return model


def evaluate_held_out(model, tokenizer, test, training_args, script_args, output_dir: Path) -> dict:
    """Plumb's report (accuracy with its interval, ECE, length bias) on the held-out pairs, written to output_dir."""
    model.eval()
    chosen, rejected = score_pairs(
        [(model, tokenizer)],
        test,
        max_length=training_args.max_length,
        batch_size=training_args.per_device_eval_batch_size,
    )
    report = evaluate_scores(
        test, chosen, rejected, bootstrap_samples=script_args.bootstrap_samples, seed=training_args.seed
    )
    report.update(model=str(output_dir), dataset=f"{script_args.dataset_name} [held out]")
    write_report(report, output_dir)
    return report
