"""Kahneman-Tversky optimisation of a policy with TRL's KTOTrainer, on unpaired judgments.

Trains on the `kto` export (`plumb collect export --format kto`: prompt, completion and a
label saying whether raters found the completion desirable); pairs and rankings work too,
each pair split into a desirable and an undesirable row. Model loading, LoRA (the frozen base
is the reference), metrics.json, the card and the held-out evaluation are DPO's
(`align.offline`). On the held-out rows it reports KTO's implicit rewards, beta times the
log-ratio of policy to reference, for desirable and undesirable completions and their margin,
and the KL estimate KTO compares them to (each prompt with a neighbouring row's completion).

`loss_type`: kto, or apo_zero_unpaired (`align.config.KTO_LOSSES`). KTO's KL estimate needs
per_device_train_batch_size of 2 or more.

    plumb align kto --config configs/align/kto-demo.yaml
    plumb align kto --config configs/align/kto-demo.yaml --dataset_name outputs/demo-kto
"""

import logging

from align.config import KTO_LOSSES, KTOScriptArguments
from align.offline import check_loss_types, load_reference, train_policy
from plumb.config import ConfigError, parse_config
from plumb.data import load_train_test, ranking_to_pairs
from plumb.models import DEFAULT, load_policy, model_init_kwargs

logger = logging.getLogger(__name__)
EVAL_KEYS = (
    "eval_loss",
    "eval_rewards/chosen",
    "eval_rewards/rejected",
    "eval_rewards/margins",
    "eval_kl",
    "eval_logps/chosen",
    "eval_logps/rejected",
)


def config_types() -> tuple:
    """The dataclasses a `plumb align kto` config fills, in the order `main` takes them."""
    from trl import KTOConfig, ModelConfig

    return KTOScriptArguments, KTOConfig, ModelConfig


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then train."""
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def main(script_args: KTOScriptArguments, training_args, model_args) -> dict:
    """Train with KTO, evaluate on held-out rows and save; returns the metrics written to metrics.json."""
    from trl import KTOTrainer

    # Dataset and settings, checked before the models load
    check_loss_types(training_args.loss_type, KTO_LOSSES)
    if training_args.loss_type != "apo_zero_unpaired" and training_args.per_device_train_batch_size < 2:
        raise ConfigError(
            "key 'per_device_train_batch_size': KTO estimates its KL term from the other rows of a batch; "
            "use 2 or more (or loss_type apo_zero_unpaired)"
        )
    train, test = load_unpaired(script_args, seed=training_args.seed)
    desirable = sum(train["label"])
    logger.info(
        "KTO data: %d desirable and %d undesirable completions to train on, %d held out",
        desirable,
        len(train) - desirable,
        len(test) if test is not None else 0,
    )

    # Model & tokenizer: an SFT adapter is merged first, so a new LoRA (or full training) starts from it
    model_spec = model_args.model_name_or_path or DEFAULT
    model, tokenizer = load_policy(model_spec, merge_adapter=True, **model_init_kwargs(model_args))
    ref_model = load_reference(script_args, model_spec, model_args)

    # Training, evaluation, saving
    return train_policy(
        KTOTrainer,
        stage="kto",
        model=model,
        ref_model=ref_model,
        tokenizer=tokenizer,
        train=train,
        test=test,
        script_args=script_args,
        training_args=training_args,
        model_args=model_args,
        eval_keys=EVAL_KEYS,
        summary=f"Aligned with TRL's KTOTrainer (beta {training_args.beta}, loss {training_args.loss_type}, "
        f"desirable weight {training_args.desirable_weight}, undesirable weight {training_args.undesirable_weight}).",
        data_note=f" ({desirable} desirable and {len(train) - desirable} undesirable completions in training)",
    )


def load_unpaired(script_args: KTOScriptArguments, *, seed: int):
    """(train, test) unpaired datasets (prompt, completion, label); pairs and rankings are split into rows.

    The training rows are shuffled: KTO batches them in order, and pairs split by TRL come all
    desirable first, which would give batches of one label and a KL estimate from those alone.
    """
    from trl.data_utils import unpair_preference_dataset

    train, test = load_train_test(
        script_args.dataset_name,
        ("unpaired", "pairwise", "ranking"),
        train_split=script_args.dataset_train_split,
        test_split=script_args.dataset_test_split,
        test_size=script_args.test_size,
        seed=seed,
    )
    splits = [train, test]
    for index, split in enumerate(splits):
        if split is not None and "completions" in split.column_names:
            split = ranking_to_pairs(split)
        if split is not None and "chosen" in split.column_names:
            split = unpair_preference_dataset(split)
        splits[index] = split
    return splits[0].shuffle(seed=seed), splits[1]
