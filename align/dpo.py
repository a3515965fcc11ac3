"""Direct preference optimisation of a policy with TRL's DPOTrainer.

Starts from an SFT checkpoint (a merged model, or base + LoRA adapter, merged on load),
trains on the contract's pairwise data (rankings expand to pairs), and reports DPO's
implicit-reward accuracy and margins on a held-out split. With LoRA the frozen base
serves as the reference, so no second copy sits in memory. With
`precompute_ref_log_probs`, the reference log-probs are kept on disk under PLUMB_HOME,
keyed by model and data, so a restart or a sweep over beta and loss reuses them.

`loss_type` picks any of TRL's DPO-family losses (IPO, hinge, robust, APO, DiscoPOP, ...:
`align.config.DPO_LOSSES`), several combined with `loss_weights`.

    plumb align dpo --config configs/align/dpo-demo.yaml
    plumb align dpo --config configs/align/dpo-demo.yaml --loss_type ipo --beta 0.5
"""

import logging

from align.config import DPO_LOSSES, DPOScriptArguments
from align.offline import check_loss_types, load_reference, train_policy
from plumb.config import parse_config
from plumb.data import load_train_test, ranking_to_pairs
from plumb.models import DEFAULT, load_policy, model_init_kwargs

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
    from trl import DPOTrainer

    from align.refcache import CachedRefDPOTrainer

    # Dataset and settings, checked before the models load: a bad file or loss fails in a second
    check_loss_types(training_args.loss_type, DPO_LOSSES)
    train, test = load_preferences(script_args, seed=training_args.seed)
    logger.info("DPO data: %d training pairs, %d held out", len(train), len(test) if test is not None else 0)

    # Model & tokenizer: an SFT adapter is merged first, so a new LoRA (or full training) starts from it
    model_spec = model_args.model_name_or_path or DEFAULT
    model, tokenizer = load_policy(model_spec, merge_adapter=True, **model_init_kwargs(model_args))
    ref_model = load_reference(script_args, model_spec, model_args)

    # Training, evaluation, saving
    cached = script_args.cache_ref_log_probs and training_args.precompute_ref_log_probs
    return train_policy(
        CachedRefDPOTrainer if cached else DPOTrainer,
        stage="dpo",
        model=model,
        ref_model=ref_model,
        tokenizer=tokenizer,
        train=train,
        test=test,
        script_args=script_args,
        training_args=training_args,
        model_args=model_args,
        eval_keys=EVAL_KEYS,
        summary=f"Aligned with TRL's DPOTrainer (beta {training_args.beta}, "
        f"loss {', '.join(training_args.loss_type)}).",
    )


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
