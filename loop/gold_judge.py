"""The loop demo's gold judge: a reward model trained on real human pairs that the loop never trains on.

Simulated raters follow it and the evaluation scores policies with it, so it stands in for
people. It is built once, with Plumb's own reward stage, from the `gold-train` split of a
pairs source (shipped: builtin:hh-harmless, Anthropic's hh-rlhf harmless pairs) and checked
on `gold-test`, then cached in the Plumb data directory beside the default policy:

    $PLUMB_HOME/models/gold-judge-<hash of backbone, pairs files and settings>/

A change of any of the three builds a new one. A build trains in a hidden temporary folder
and is renamed into place only when complete, so a killed build never looks done.

    from loop.gold_judge import gold_judge
    judge_dir = gold_judge()  # a few minutes on 2 CPU cores the first time, then instant
"""

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from plumb.config import ConfigError
from plumb.data import BUILTIN, builtin_path
from plumb.paths import data_dir

logger = logging.getLogger(__name__)

SPLITS = ("gold-train", "gold-test")
RECORD = "gold_judge.json"

# Settings of the reward stage (keys of RewardScriptArguments, TRL's RewardConfig or ModelConfig), chosen for a build
# of under five minutes on 2 CPU cores with the default MiniLM backbone and the shipped pairs (1,113 train pairs).
GOLD_SETTINGS = {
    "max_length": 128,  # tokens kept from the end: the last replies, where chosen and rejected differ
    "freeze_layers": 3,  # embeddings and the lowest 3 of 6 blocks frozen: faster steps, less overfitting
    "num_train_epochs": 1.5,  # held out: 0.629 in 276 s; 1 epoch 0.608 in 175 s, 2 epochs 0.641 in 339 s
    "learning_rate": 1.0e-4,
    "lr_scheduler_type": "linear",
    "warmup_steps": 10,
    "per_device_train_batch_size": 16,
    "per_device_eval_batch_size": 32,
    "train_sampling_strategy": "group_by_length",  # pairs of similar length share a batch: less padding
    "gradient_checkpointing": False,  # TRL turns it on; a 22M model needs speed, not memory
    "center_rewards_coefficient": 0.01,
    "logging_steps": 10,
    "seed": 0,
}
# Given by gold_judge's arguments or by what a cached judge must be: not settings.
FIXED = {
    "model_name_or_path",
    "dataset_name",
    "dataset_train_split",
    "dataset_test_split",
    "output_dir",
    "report_to",
    "eval_strategy",
    "save_strategy",
    "early_stopping_patience",
    "bf16",
    "fp16",
}


def gold_judge(
    backbone: str = "default",
    *,
    pairs: str = "builtin:hh-harmless",
    config: dict | None = None,
    home: Path | None = None,
) -> Path:
    """The directory of the gold judge for this backbone, pairs source and settings; built on first use.

    `pairs` is `builtin:NAME` or a directory holding gold-train.jsonl and gold-test.jsonl (pairwise);
    `config` overrides keys of GOLD_SETTINGS; `home` replaces the Plumb data directory ($PLUMB_HOME).
    """
    settings = gold_settings(config)
    target = judge_dir(backbone, pairs, settings, home=home)
    if target.is_dir():
        logger.info("Gold judge: using %s (%s)", target, _accuracy_text(target))
        return target
    for leftover in sorted(target.parent.glob(f".{target.name}-*")):
        logger.warning("Gold judge: %s is an unfinished build (killed, or running elsewhere); not used", leftover)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        record = build(backbone, pairs, settings, staging)
        name_final_folder(staging, target)
        try:
            os.replace(staging, target)  # atomic: only a finished build ever has the judge's name
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(staging)  # another process finished the same judge first: keep theirs
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info(
        "Gold judge: built in %.0f s, held-out accuracy %.3f on %d pairs: %s",
        record["build_seconds"],
        record["held_out_accuracy"],
        record["held_out_pairs"],
        target,
    )
    return target


def name_final_folder(staging: Path, target: Path) -> None:
    """Make the card, resolved config and report name the judge's folder, not the temporary one it was built in."""
    for name in ("README.md", "plumb_config.yaml", "eval_report.json"):
        path = staging / name
        if path.is_file():
            path.write_text(path.read_text(encoding="utf-8").replace(str(staging), str(target)), encoding="utf-8")


def gold_settings(config: dict | None = None) -> dict:
    """GOLD_SETTINGS with `config` laid over it; a key the reward stage does not know, or a fixed one, is an error."""
    settings = {**GOLD_SETTINGS, **(config or {})}
    known = {field.name for kind in _config_types() for field in dataclasses.fields(kind)}
    for key in settings:
        if key in FIXED:
            raise ConfigError(f"gold judge settings: '{key}' is set by gold_judge itself, not by settings")
        if key not in known:
            raise ConfigError(f"gold judge settings: unknown key '{key}' (not a reward-stage setting)")
    return settings


def judge_dir(backbone: str, pairs: str, settings: dict, *, home: Path | None = None) -> Path:
    """The judge's folder for these inputs: named by a hash of backbone, pairs file contents and settings."""
    digest = hashlib.sha256(json.dumps({"backbone": backbone, "settings": settings}, sort_keys=True).encode())
    for path in pairs_files(pairs):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return (home or data_dir()) / "models" / f"gold-judge-{digest.hexdigest()[:16]}"


def pairs_files(pairs: str) -> list[Path]:
    """The gold-train and gold-test files of a pairs source (builtin:NAME or a directory)."""
    if pairs.startswith(BUILTIN):
        return [builtin_path(pairs[len(BUILTIN) :], split) for split in SPLITS]
    files = [Path(pairs).expanduser() / f"{split}.jsonl" for split in SPLITS]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"gold judge pairs: {pairs} must be builtin:NAME or a directory with "
            f"{' and '.join(f'{s}.jsonl' for s in SPLITS)} (missing: {', '.join(missing)})"
        )
    return files


def build(backbone: str, pairs: str, settings: dict, output_dir: Path) -> dict:
    """Train the judge into `output_dir` with `plumb reward train`'s code; write and return its record."""
    from reward import train

    logger.info(
        "Gold judge: training %s on %s [%s], checked on [%s]; once, cached in %s",
        backbone,
        pairs,
        SPLITS[0],
        SPLITS[1],
        output_dir.parent,
    )
    started = time.time()
    metrics = train.main(*reward_arguments(backbone, pairs, settings, output_dir))
    record = {
        "backbone": backbone,
        "pairs": pairs,
        "settings": settings,
        "held_out_accuracy": metrics["eval_accuracy"],
        "held_out_accuracy_ci95": metrics["eval_accuracy_ci95"],
        "held_out_pairs": metrics["eval_pairs"],
        "train_pairs": metrics["train_pairs"],
        "build_seconds": round(time.time() - started, 1),
    }
    (output_dir / RECORD).write_text(json.dumps(record, indent=2))
    return record


def reward_arguments(backbone: str, pairs: str, settings: dict, output_dir: Path) -> tuple:
    """(RewardScriptArguments, RewardConfig, ModelConfig) for one build: each setting goes to the class that has it."""
    values = {
        "dtype": "float32",
        **settings,
        "model_name_or_path": backbone,
        "dataset_name": pairs,
        "dataset_train_split": SPLITS[0],
        "dataset_test_split": SPLITS[1],
        "output_dir": str(output_dir),
        "report_to": [],
        "eval_strategy": "no",
        "save_strategy": "no",
        "bf16": False,  # TRL's default refuses a CPU-only machine, and a 22M-parameter judge gains nothing from it
    }
    arguments = []
    for kind in _config_types():
        names = {field.name for field in dataclasses.fields(kind) if field.init}
        arguments.append(kind(**{key: value for key, value in values.items() if key in names}))
    return tuple(arguments)


def _config_types() -> tuple:
    from reward import train

    return train.config_types()


def _accuracy_text(path: Path) -> str:
    record = path / RECORD
    if not record.is_file():
        return "no build record"
    record = json.loads(record.read_text())
    return f"held-out accuracy {record['held_out_accuracy']:.3f} on {record['held_out_pairs']} pairs"
