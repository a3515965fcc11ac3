"""What a folder needs to load as a model: its config and weights, or a LoRA adapter's.

Plain path checks, shared by loading (`plumb.models`) and resuming (`plumb.checkpoints`)
without either importing the other.
"""

from pathlib import Path

# What transformers and peft load weights from (single file or sharded with an index).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
ADAPTER_WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")


def missing_model_files(directory) -> list[str]:
    """What a folder lacks to load as a model or a LoRA adapter (empty when nothing): its config, its weights."""
    directory = Path(directory)
    if (directory / "adapter_config.json").is_file():
        has_weights = any((directory / name).is_file() for name in ADAPTER_WEIGHT_FILES)
        return [] if has_weights else ["adapter weights (adapter_model.safetensors)"]
    missing = [] if (directory / "config.json").is_file() else ["config.json"]
    if not any((directory / name).is_file() for name in WEIGHT_FILES):
        missing.append("model weights (model.safetensors or pytorch_model.bin)")
    return missing
