"""Hyperparameter search for the training stages, on `Trainer.hyperparameter_search(backend="optuna")`.

A run's YAML names the search: `hp_search: true`, `hp_trials: N` and `hp_space:`, a mapping of a key to a
spec, either `{choices: [...]}` or `{low: A, high: B}` with optional `log: true` and `step: S` (two integer
bounds search integers). Each stage says which keys it can search (`supported`); the trials go into an Optuna
study stored in OUTPUT_DIR/hp_search.db under a fixed name, so a rerun adds trials to the same study. The
best trial is written as OUTPUT_DIR/best_config.yaml (a normal run's config), the search as hp_search.png and
its summary as hp_search.json. This module imports no stage: each stage hands it its trainer, its metric, its
resolved config and a `model_init` that builds a trial's model (`trial_policy` builds a policy as TRL's trainers
do, with the trial's LoRA rank and scale).
"""

import dataclasses
import json
import logging
import numbers
from pathlib import Path

import yaml

from plumb.config import ConfigError, resolved_config

logger = logging.getLogger(__name__)

SEARCH_KEYS = ("hp_search", "hp_space", "hp_trials")
STORAGE_FILE = "hp_search.db"
BEST_CONFIG = "best_config.yaml"
PLOT_FILE = "hp_search.png"
SUMMARY_FILE = "hp_search.json"
SPEC_KEYS = {"choices", "low", "high", "log", "step"}
# TrainingArguments fields every stage can search: Trainer sets them on the args for each trial, and no stage's
# trainer caches them in __init__. `prepare` offers those a stage's args have (warmup_ratio is gone from
# transformers 5.24, for one).
TRAINING_KEYS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "weight_decay",
    "warmup_steps",
    "warmup_ratio",
    "max_grad_norm",
    "lr_scheduler_type",
    "seed",
)
# ModelConfig's LoRA rank and scale: a trial's adapter is built with them in `trial_policy`.
LORA_KEYS = ("lora_r", "lora_alpha")


def prepare(script_args, training_args, model_args, *, config_file, training_keys, model_keys=()):
    """(space, resolved config) of a run with `hp_search`, checked before any model loads; (None, None) without.

    Searchable: the `training_keys` the training args have, and `model_keys` (LoRA_KEYS only with use_peft).
    The resolved config is taken now, since Trainer sets each trial's values on the args themselves.
    """
    if not script_args.hp_search:
        return None, None
    where = config_file or "hp_space"
    if not script_args.hp_space:
        raise ConfigError(f"{where}: hp_search needs an hp_space mapping of keys to search")
    if not getattr(model_args, "use_peft", False):
        for key in set(script_args.hp_space) & set(LORA_KEYS) & set(model_keys):
            raise ConfigError(f"{where}: hp_space key '{key}' is a LoRA setting: it needs use_peft: true")
    supported = {k for k in training_keys if hasattr(training_args, k)} | set(model_keys)
    space = parse_space(script_args.hp_space, where=where, supported=supported)
    return space, resolved_config(script_args, training_args, model_args)


def require_held_out(test, *, what: str) -> None:
    """A search scores its trials on held-out data: refuse one without, before any model loads."""
    if test is None:
        raise ConfigError(f"hp_search needs held-out {what} to score the trials (a test split or test_size > 0)")


def parse_space(space, *, where: str, supported) -> dict[str, dict]:
    """Check an `hp_space` mapping against the keys a stage supports; returns {key: spec}, errors name key and file."""
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"{where}: hp_space must be a non-empty mapping of a key to a search spec")
    parsed = {}
    for key, spec in space.items():
        at = f"{where}: hp_space key '{key}'"
        if key not in supported:
            raise ConfigError(f"{at} cannot be searched here; searchable keys: {', '.join(sorted(supported))}")
        if not isinstance(spec, dict):
            raise ConfigError(f"{at}: expected {{choices: [...]}} or {{low: A, high: B}}, got {spec!r}")
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            raise ConfigError(f"{at}: unknown spec field(s) {', '.join(sorted(unknown))}; use {', '.join(SPEC_KEYS)}")
        parsed[key] = _check_spec(spec, at)
    return parsed


def _check_spec(spec: dict, at: str) -> dict:
    if "choices" in spec:
        if set(spec) != {"choices"}:
            raise ConfigError(f"{at}: choices cannot be combined with low/high/log/step")
        if not isinstance(spec["choices"], list) or not spec["choices"]:
            raise ConfigError(f"{at}: choices must be a non-empty list")
        return {"choices": list(spec["choices"])}
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{at}: a range needs both low and high")
    low, high = spec["low"], spec["high"]
    for name, value in (("low", low), ("high", high), ("step", spec.get("step", 1))):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{at}: {name} must be a number, got {value!r}")
    if not low < high:
        raise ConfigError(f"{at}: low ({low}) must be below high ({high})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{at}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{at}: a log range needs low > 0, got {low}")
    if log and "step" in spec:
        raise ConfigError(f"{at}: step cannot be used with log")
    integer = isinstance(low, int) and isinstance(high, int) and isinstance(spec.get("step", 1), int)
    return {"low": low, "high": high, "log": log, "step": spec.get("step"), "int": integer}


def suggest(trial, space: dict[str, dict]) -> dict:
    """The trial's value of every key; Optuna returns the same value when a key is suggested twice in one trial."""
    values = {}
    for key, spec in space.items():
        if "choices" in spec:
            values[key] = trial.suggest_categorical(key, spec["choices"])
        elif spec["int"]:
            values[key] = trial.suggest_int(key, spec["low"], spec["high"], step=spec["step"] or 1, log=spec["log"])
        else:
            values[key] = trial.suggest_float(key, spec["low"], spec["high"], step=spec["step"], log=spec["log"])
    return values


def storage_url(output_dir) -> str:
    """The Optuna storage of a search: a SQLite file in the run's output directory."""
    path = Path(output_dir).resolve() / STORAGE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def study_name(stage: str) -> str:
    """The fixed study name of a stage's search, so a rerun in the same output directory resumes it."""
    return f"plumb-{stage}"


def run_search(
    trainer,
    *,
    space,
    base_config: dict,
    training_keys,
    model_init,
    metric: str,
    direction: str,
    trials: int,
    stage: str,
    command: str,
) -> dict:
    """Run `trials` more trials of the stage's study, then write best_config.yaml, hp_search.png and hp_search.json;
    returns that summary. `model_init(values)` builds a trial's model.

    Keys in `training_keys` are set on the TrainingArguments by Trainer; the others reach `model_init`. The sampler
    is seeded by the run's seed and the trials already in the study, so a search repeats and a resumed one goes on.
    """
    import optuna

    output_dir, searched = trainer.args.output_dir, set(training_keys)
    done = optuna.create_study(
        storage=storage_url(output_dir), study_name=study_name(stage), direction=direction, load_if_exists=True
    )
    sampler = optuna.samplers.TPESampler(seed=base_config["seed"] + len(done.trials))
    # Trainer calls model_init before hp_space in each trial; suggesting here fixes the values hp_space then reads.
    trainer.model_init = lambda trial: model_init(suggest(trial, space) if trial is not None else {})
    trainer.hyperparameter_search(
        hp_space=lambda trial: {k: v for k, v in suggest(trial, space).items() if k in searched},
        compute_objective=lambda metrics: metrics[metric],
        n_trials=trials,
        direction=direction,
        backend="optuna",
        storage=storage_url(output_dir),
        study_name=study_name(stage),
        load_if_exists=True,
        sampler=sampler,
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2),
    )
    study = optuna.load_study(study_name=study_name(stage), storage=storage_url(output_dir))
    return finish(study, base_config, output_dir, metric=metric, command=command)


def finish(study, base_config: dict, output_dir, *, metric: str, command: str) -> dict:
    """Write best_config.yaml, hp_search.png and hp_search.json (the summary, returned) and log the best trial."""
    best = study.best_trial
    config_path = write_best_config(study, base_config, output_dir)
    plot_search(study, output_dir, metric=metric)
    summary = {"hp_trials": len(study.trials), "hp_best_trial": best.number, f"hp_best_{metric}": best.value}
    summary.update({f"hp_best_{k}": v for k, v in best.params.items()})
    (Path(output_dir) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    logger.info("Best of %d trials: %s\nRerun it: %s --config %s", len(study.trials), summary, command, config_path)
    return summary


def write_best_config(study, base_config: dict, output_dir) -> Path:
    """best_config.yaml: the run's resolved config without the search keys, the best trial's values filled in."""
    config = {k: v for k, v in base_config.items() if k not in SEARCH_KEYS}
    config.update(study.best_trial.params)
    config["output_dir"] = str(Path(output_dir) / "best")  # a rerun must not overwrite the search's own folder
    path = Path(output_dir) / BEST_CONFIG
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def plot_search(study, output_dir, *, metric: str) -> Path:
    """hp_search.png: each finished trial's value in trial order, pruned trials' last value, and the running best."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    maximize = study.direction.name == "MAXIMIZE"
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED and t.intermediate_values]
    best, running = None, []
    for trial in done:
        best = trial.value if best is None else (max if maximize else min)(best, trial.value)
        running.append(best)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([t.number for t in done], [t.value for t in done], "o", label="trial")
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        ax.plot([t.number for t in pruned], last, "x", color="grey", label="pruned (last report)")
    ax.step([t.number for t in done], running, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.set_title(f"{study.study_name}: {len(study.trials)} trials")
    ax.legend()
    fig.tight_layout()
    path = Path(output_dir) / PLOT_FILE
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def config_file(argv: list[str]) -> str | None:
    """The `--config FILE` of a command line, to name it in errors about the search space."""
    for i, arg in enumerate(argv[:-1]):
        if arg == "--config":
            return argv[i + 1]
    return None


def lora_config(model_args, values: dict):
    """TRL's LoRA config of `model_args` (`get_peft_config`) with the trial's lora_r / lora_alpha; None without LoRA."""
    from trl import get_peft_config

    trial = {key: values[key] for key in LORA_KEYS if key in values}
    return get_peft_config(dataclasses.replace(model_args, **trial))


def token_ids(model) -> dict:
    """The pad and eos ids TRL's trainer gave its model's configs, for `trial_policy` to give each trial's model."""
    return {
        "config": {k: getattr(model.config.get_text_config(), k) for k in ("pad_token_id", "eos_token_id")},
        "generation": {k: getattr(model.generation_config, k) for k in ("pad_token_id", "eos_token_id")},
    }


def trial_policy(model, trainer, model_args, values: dict, *, ids: dict, fused_outputs: tuple[str, ...]):
    """A trial's freshly loaded policy made ready as TRL 1.16's SFT/DPO trainers make theirs in `__init__` (which
    Trainer does not rerun per trial): token ids, the fused log-prob head, and LoRA with the trial's rank and scale."""
    from peft import get_peft_model
    from trl.trainer.utils import add_fused_lm_head

    for key, value in ids["config"].items():
        setattr(model.config.get_text_config(), key, value)
    for key, value in ids["generation"].items():
        setattr(model.generation_config, key, value)
    # The trainer's loss calls the model with fused_lm_head=True, which only the patched forward accepts.
    add_fused_lm_head(model, outputs=fused_outputs)
    peft_config = lora_config(model_args, values)
    if peft_config is not None:
        model = get_peft_model(model, peft_config)
        if trainer.args.gradient_checkpointing:  # as TRL does: PEFT with checkpointing needs input gradients
            model.enable_input_require_grads()
    return model
