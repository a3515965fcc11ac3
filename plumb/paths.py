"""Where Plumb keeps what it makes (the data directory, the model cache), and writing a file whole."""

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


def write_whole(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` (its folder made if needed) as a whole file or not at all: a temporary file of this
    process, renamed over `path`, so a reader or a parallel writer never sees half of it. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)  # no half-written file left beside the whole one
        raise
    return path
