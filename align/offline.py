"""What the offline preference verbs (`plumb align dpo`, `plumb align kto`) share once their data is checked.

The reference policy, training with LoRA or in full (TRL's trainer of the verb), the held-out
evaluation, and the saved policy with metrics.json, the resolved config and its model card
(base model and data as Hub ids, the held-out figures as `model-index`).
"""

import json
import logging
from pathlib import Path

from plumb.cards import metrics_table, model_card_data, save_card
from plumb.checkpoints import run_training
from plumb.config import ConfigError, save_resolved_config
from plumb.models import DEFAULT, load_policy, model_init_kwargs, save_trained_policy
from plumb.tracking import setup_tracking

logger = logging.getLogger(__name__)


def check_loss_types(given, known: dict, *, key: str = "loss_type") -> None:
    """A `ConfigError` naming the key for a loss TRL's trainer does not have, before any model loads."""
    unknown = [loss for loss in ([given] if isinstance(given, str) else given) if loss not in known]
    if unknown:
        raise ConfigError(f"key '{key}': unknown loss {', '.join(unknown)}; choose from: {', '.join(known)}")


def load_reference(script_args, model_spec: str, model_args):
    """The reference policy when one is named and differs from the start; None lets TRL use its own (the start,
    or with LoRA the base with the adapter disabled, so no second copy sits in memory)."""
    reference = script_args.ref_model_name_or_path
    if not reference or reference == model_spec:
        return None
    return load_policy(reference, merge_adapter=True, **model_init_kwargs(model_args))[0].eval()


def train_policy(
    trainer_class,
    *,
    stage: str,
    model,
    ref_model,
    tokenizer,
    train,
    test,
    script_args,
    training_args,
    model_args,
    eval_keys: tuple,
    summary: str,
    data_note: str = "",
) -> dict:
    """Train with `trainer_class`, evaluate on `test`, save the policy, metrics.json, config and card; the metrics."""
    trainer = make_trainer(
        trainer_class,
        stage=stage,
        model=model,
        ref_model=ref_model,
        tokenizer=tokenizer,
        train=train,
        test=test,
        training_args=training_args,
        model_args=model_args,
    )
    metrics = run_training(trainer, training_args.resume_from_checkpoint, stage=stage)
    if test is not None:
        evaluation = trainer.evaluate()
        metrics.update({key: evaluation[key] for key in eval_keys if key in evaluation})

    output_dir = Path(training_args.output_dir)
    save_trained_policy(trainer, tokenizer, output_dir, merge=bool(model_args.use_peft and script_args.merge_adapter))
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    save_resolved_config(output_dir, script_args, training_args, model_args)
    write_policy_card(
        output_dir,
        stage=stage,
        model_spec=model_args.model_name_or_path or DEFAULT,
        script_args=script_args,
        summary=summary,
        data_note=data_note,
        metrics=metrics,
    )
    logger.info("Saved to %s\n%s", output_dir.resolve(), metrics_table(metrics))
    return metrics


def make_trainer(trainer_class, *, stage: str, model, ref_model, tokenizer, train, test, training_args, model_args):
    """TRL's trainer of the verb on the data (no evaluation without `test`), with tracking and LoRA as configured."""
    from trl import get_peft_config

    if test is None:
        training_args.eval_strategy = "no"
    setup_tracking(training_args, stage=stage)
    return trainer_class(
        model=model,
        ref_model=ref_model,
        args=training_args,
        train_dataset=train,
        eval_dataset=test,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )


def write_policy_card(
    output_dir: Path, *, stage: str, model_spec: str, script_args, summary: str, data_note: str, metrics: dict
) -> Path:
    """The model card: starting policy, data, the method's settings and the held-out figures (also as model-index)."""
    base = "SmolLM2-135M-Instruct (Plumb's offline default)" if model_spec == DEFAULT else model_spec
    held_out = f"`{script_args.dataset_test_split}` or {script_args.test_size:.0%} of train"
    return save_card(
        output_dir,
        model_card_data(output_dir, kind="policy", tags=[stage]),
        title=f"{stage.upper()} policy from {base}",
        summary=summary,
        sections={
            "Data": f"`{script_args.dataset_name}`{data_note}; held out: {held_out}.",
            "Evaluation": "Implicit rewards, beta * log(policy / reference), on the held-out data.\n\n"
            + metrics_table(metrics),
            "Training config": f"See `plumb_config.yaml`; rerun with `plumb align {stage} --config plumb_config.yaml`.",
        },
    )
