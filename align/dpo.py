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
    plumb align dpo --config configs/align/dpo-search.yaml   # an Optuna search (hp_search), see `search`
"""

import logging

from align.config import DPO_LOSSES, DPOScriptArguments
from align.offline import check_loss_types, load_reference, make_trainer, train_policy
from plumb import hp_search
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
    main(*parse_config(config_types(), argv, prog=prog), config_file=hp_search.config_file(argv))
    return 0


def main(script_args: DPOScriptArguments, training_args, model_args, *, config_file: str | None = None) -> dict:
    """Train with DPO, evaluate on held-out pairs and save; returns the metrics written to metrics.json.

    With `hp_search`, run the Optuna search instead and return its summary (see `search`)."""
    from trl import DPOTrainer

    from align.refcache import CachedRefDPOTrainer

    # Dataset and settings, checked before the models load: a bad file, loss or search space fails in a second
    check_loss_types(training_args.loss_type, DPO_LOSSES)
    space, base_config = hp_search.prepare(
        script_args,
        training_args,
        model_args,
        config_file=config_file,
        training_keys=TRAINING_SEARCH_KEYS,
        model_keys=hp_search.LORA_KEYS,
    )
    train, test = load_preferences(script_args, seed=training_args.seed)
    logger.info("DPO data: %d training pairs, %d held out", len(train), len(test) if test is not None else 0)
    if space is not None:
        hp_search.require_held_out(test, what="pairs")

    # Model & tokenizer: an SFT adapter is merged first, so a new LoRA (or full training) starts from it
    model_spec = model_args.model_name_or_path or DEFAULT
    model, tokenizer = load_policy(model_spec, merge_adapter=True, **model_init_kwargs(model_args))
    ref_model = load_reference(script_args, model_spec, model_args)

    # Training, evaluation, saving
    cached = script_args.cache_ref_log_probs and training_args.precompute_ref_log_probs
    trainer_class = CachedRefDPOTrainer if cached else DPOTrainer
    if space is not None:
        trainer = make_trainer(
            trainer_class,
            stage="dpo",
            model=model,
            ref_model=ref_model,
            tokenizer=tokenizer,
            train=train,
            test=test,
            training_args=training_args,
            model_args=model_args,
        )
        return search(trainer, script_args, model_args, space, base_config)
    return train_policy(
        trainer_class,
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


# Searchable keys: DPOConfig fields Trainer sets on the args per trial, and LoRA's rank and scale, applied when a
# trial's model is built. Of these DPOTrainer copies only beta in __init__ (TRL 1.16: `self.beta = args.beta`), so
# `search` sets each trial's beta on the trainer; keys it copies but that cannot be searched here are left out.
TRAINING_SEARCH_KEYS = (*hp_search.TRAINING_KEYS, "beta")
# Maximized, not eval_loss minimized: the loss is not comparable across trials of different beta (at the same
# margin -log sigmoid(beta * margin) falls as beta grows, so the search would favour a large beta for itself),
# while the share of held-out pairs whose implicit reward ranks chosen first does not depend on beta's scale. On a
# few held-out pairs it is coarse and trials tie; Optuna then keeps the first of the tied trials as the best.
SEARCH_METRIC = "eval_rewards/accuracies"


def search(trainer, script_args, model_args, space: dict, base_config: dict) -> dict:
    """Run the trials (held-out eval_rewards/accuracies, maximized), write best_config.yaml, hp_search.png/json."""
    from transformers import set_seed
    from trl.trainer.utils import disable_dropout_in_model

    model_spec = model_args.model_name_or_path or DEFAULT
    ids = hp_search.token_ids(trainer.model)
    # What DPOTrainer's loss asks of the fused log-prob head it adds to its model in __init__ (TRL 1.16).
    fused = ("log_probs", "entropy", "mean_logits", "is_top1")
    fused += ("log_sum_sq_probs",) if trainer.args.use_weighting else ()

    def model_init(values: dict):
        # Trainer seeds with the previous trial's seed before calling this; the trial's own is set only after.
        set_seed(values.get("seed", base_config["seed"]))
        # Trainer calls this before it sets the trial's values on the args, and DPOTrainer's loss reads its own copy.
        trainer.beta = values.get("beta", base_config["beta"])
        model, _ = load_policy(model_spec, merge_adapter=True, **model_init_kwargs(model_args))
        if trainer.args.disable_dropout:  # DPOTrainer does this in __init__, to the first model only
            disable_dropout_in_model(model)
        return hp_search.trial_policy(model, trainer, model_args, values, ids=ids, fused_outputs=fused)

    return hp_search.run_search(
        trainer,
        space=space,
        base_config=base_config,
        training_keys=TRAINING_SEARCH_KEYS,
        model_init=model_init,
        metric=SEARCH_METRIC,
        direction="maximize",
        trials=script_args.hp_trials,
        stage="dpo",
        command="plumb align dpo",
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
