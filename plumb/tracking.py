"""Experiment tracking: Weights & Biases when credentials exist, otherwise wandb offline, plus TensorBoard.

Every stage of one loop shares a run name (the W&B group), so the SFT, reward and
alignment runs of one iteration sit together in the W&B project.
"""

import netrc
import os
import time
from pathlib import Path

PROJECT = "plumb"


def wandb_mode() -> str:
    """'online' with credentials (WANDB_API_KEY or a netrc entry), else 'offline'; WANDB_MODE wins if set."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        if netrc.netrc().authenticators("api.wandb.ai"):
            return "online"
    except (FileNotFoundError, netrc.NetrcParseError):
        pass
    return "offline"


def loop_name() -> str:
    """The run name shared by every stage of one loop: `$PLUMB_RUN`, else one made now and exported."""
    if not os.environ.get("PLUMB_RUN"):
        os.environ["PLUMB_RUN"] = time.strftime("plumb-%Y%m%d-%H%M%S")
    return os.environ["PLUMB_RUN"]


def setup_tracking(training_args, *, stage: str) -> str:
    """Point the trainer's loggers at this run: W&B group and mode, local folders under output_dir; returns the mode."""
    loop = loop_name()
    if not training_args.run_name or training_args.run_name == training_args.output_dir:
        training_args.run_name = f"{loop}-{stage}"
    report_to = training_args.report_to or []
    if "wandb" in report_to:
        mode = wandb_mode()
        os.environ["WANDB_MODE"] = mode
        os.environ.setdefault("WANDB_PROJECT", PROJECT)
        os.environ["WANDB_RUN_GROUP"] = loop
        os.environ["WANDB_DIR"] = str(Path(training_args.output_dir).resolve())
        os.environ.setdefault("WANDB_SILENT", "true")
        Path(os.environ["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)
        return mode
    return "disabled"
