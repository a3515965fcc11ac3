"""Direct preference optimisation of a policy with TRL's DPOTrainer.

Starts from an SFT checkpoint (a merged model, or base + LoRA adapter, merged on load),
trains on the contract's pairwise data (rankings expand to pairs), and reports DPO's
implicit-reward accuracy and margins on a held-out split. With LoRA the frozen base
serves as the reference, so no second copy sits in memory. With
`precompute_ref_log_probs`, the reference log-probs are kept on disk under PLUMB_HOME,
keyed by model and data, so a restart or a sweep over beta and loss reuses them.

    plumb align dpo --config configs/align/dpo-demo.yaml
"""

import json
import logging
from pathlib import Path

from align.config import DPOScriptArguments
from plumb.cards import metrics_table, write_card
from plumb.checkpoints import run_training
from plumb.config import parse_config, save_resolved_config
from plumb.data import load_train_test, ranking_to_pairs
from plumb.models import DEFAULT, load_policy, model_init_kwargs, save_trained_policy
from plumb.tracking import setup_tracking

logger = logging.getLogger(__name__)
EVAL_KEYS = (
    "eval_loss",
    "eval_rewards/accuracies",
    "eval_rewards/margins",
    "eval_rewards/chosen",
    "eval_rewards/rejected",
)


def config_types() -> tuple:
    """The dataclasses a `plumb align dpo` config fills, in the order `main` takes them."""
    from trl import DPOConfig, ModelConfig

    return DPOScriptArguments, DPOConfig, ModelConfig


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then train."""
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def main(script_args: DPOScriptArguments, training_args, model_args) -> dict:
    """Train with DPO, evaluate on held-out pairs and save; returns the metrics written to metrics.json."""
    from trl import DPOTrainer, get_peft_config

    from align.refcache import CachedRefDPOTrainer

    # Dataset, checked before the models load: a bad file fails in a second
    train, test = load_preferences(script_args, seed=training_args.seed)
    logger.info("DPO data: %d training pairs, %d held out", len(train), len(test) if test is not None else 0)

    # Model & tokenizer: an SFT adapter is merged first, so a new LoRA (or full training) starts from it
    model_spec = model_args.model_name_or_path or DEFAULT
    model, tokenizer = load_policy(model_spec, merge_adapter=True, **model_init_kwargs(model_args))
    ref_model = None
    if script_args.ref_model_name_or_path and script_args.ref_model_name_or_path != model_spec:
        ref_model = load_policy(
            script_args.ref_model_name_or_path, merge_adapter=True, **model_init_kwargs(model_args)
        )[0].eval()

    # Training
    if test is None:
        training_args.eval_strategy = "no"
    setup_tracking(training_args, stage="dpo")
    cached = script_args.cache_ref_log_probs and training_args.precompute_ref_log_probs
    trainer = (CachedRefDPOTrainer if cached else DPOTrainer)(
        model=model,
        ref_model=ref_model,
        args=training_args,
        train_dataset=train,
        eval_dataset=test,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    metrics = run_training(trainer, training_args.resume_from_checkpoint, stage="dpo")
    if test is not None:
        evaluation = trainer.evaluate()
        metrics.update({key: evaluation[key] for key in EVAL_KEYS if key in evaluation})

    # Save
    output_dir = Path(training_args.output_dir)
    save_trained_policy(trainer, tokenizer, output_dir, merge=bool(model_args.use_peft and script_args.merge_adapter))
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    save_resolved_config(output_dir, script_args, training_args, model_args)
    write_dpo_card(output_dir, model_spec, script_args, training_args, metrics)
    logger.info("Saved to %s\n%s", output_dir.resolve(), metrics_table(metrics))
    return metrics


def load_preferences(script_args: DPOScriptArguments, *, seed: int):
    """(train, test) pairwise datasets; ranking data is expanded to its pairs (ties give none)."""
    train, test = load_train_test(
        script_args.dataset_name,
        ("pairwise", "ranking"),
        train_split=script_args.dataset_train_split,
        test_split=script_args.dataset_test_split,
        test_size=script_args.test_size,
        seed=seed,
    )
    if "completions" in train.column_names:  # ranking data
        train, test = ranking_to_pairs(train), ranking_to_pairs(test) if test is not None else None
    return train, test


def write_dpo_card(output_dir: Path, model_spec: str, script_args, training_args, metrics: dict) -> None:
    """The model card: starting policy, data, the DPO settings and the held-out metrics."""
    base = "SmolLM2-135M-Instruct (Plumb's offline default)" if model_spec == DEFAULT else model_spec
    write_card(
        output_dir,
        title=f"DPO policy from {base}",
        summary=f"Aligned with TRL's DPOTrainer (beta {training_args.beta}, "
        f"loss {', '.join(training_args.loss_type)}).",
        metadata={
            "base_model": None if model_spec == DEFAULT else model_spec,
            "tags": ["plumb", "trl", "dpo"],
            "datasets": [script_args.dataset_name],
        },
        sections={
            "Data": f"`{script_args.dataset_name}`; held out: `{script_args.dataset_test_split}` or "
            f"{script_args.test_size:.0%} of train.",
            "Evaluation": "Implicit-reward accuracy and margins on held-out pairs.\n\n" + metrics_table(metrics),
            "Training config": "See `plumb_config.yaml`; rerun with `plumb align dpo --config plumb_config.yaml`.",
        },
    )
