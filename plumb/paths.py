"""Where Plumb keeps what it makes: the data directory and the model cache."""

import os
from pathlib import Path

import platformdirs


def data_dir() -> Path:
    """The Plumb data directory: `$PLUMB_HOME`, else the user's cache dir (`~/.cache/plumb` on Linux)."""
    home = os.environ.get("PLUMB_HOME")
    return Path(home).expanduser() if home else Path(platformdirs.user_cache_dir("plumb"))


def model_cache_dir() -> Path:
    """Where dequantized offline default models are cached as safetensors."""
    return data_dir() / "models"
