"""Model and dataset cards, built with huggingface_hub's own classes (`ModelCardData`, `EvalResult`, `DatasetCardData`).

A card is README.md: Hub metadata over a Markdown body of sections. A model's metadata is
worked out from its own folder: `base_model` and `datasets` as Hub ids from what
plumb_config.yaml says it started from and trained on (the offline defaults named by the
Hub models they are copies of), and every held-out figure of metrics.json as `model-index`.
Local paths are named without their machine-specific part (`public_name`, `portable_text`),
so a card can be shared.
"""

import html
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path

import yaml

from plumb import __version__
from plumb.config import RESOLVED_CONFIG

# The offline defaults (plumb/models.py) are copies of these Hub models; both are Apache-2.0.
DEFAULT_HUB_IDS = {"policy": "HuggingFaceTB/SmolLM2-135M-Instruct", "reward": "sentence-transformers/all-MiniLM-L6-v2"}
KNOWN_LICENSES = dict.fromkeys(DEFAULT_HUB_IDS.values(), "apache-2.0")
# Plumb's shipped data that comes from a Hub dataset; the other shipped sets were written for the project.
BUILTIN_SOURCES = {"hh-harmless": "Anthropic/hh-rlhf"}
PIPELINE_TAGS = {"policy": "text-generation", "reward": "text-classification"}
METRICS_FILE = "metrics.json"
# Trainer bookkeeping in metrics.json, not figures about the model.
NOT_FIGURES = ("runtime", "per_second", "epoch")
# The Hub's size buckets for datasets, by number of rows.
SIZE_CATEGORIES = (
    (1e3, "n<1K"),
    (1e4, "1K<n<10K"),
    (1e5, "10K<n<100K"),
    (1e6, "100K<n<1M"),
    (1e7, "1M<n<10M"),
    (1e8, "10M<n<100M"),
    (1e9, "100M<n<1B"),
)


# Writing cards


def metrics_table(metrics: dict) -> str:
    """A Markdown table of metric name and value (floats to 4 significant digits)."""
    lines = ["| metric | value |", "|---|---|"]
    for name, value in metrics.items():
        if isinstance(value, float):
            shown = f"{value:.4g}"
        elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, float) for v in value):
            shown = f"{value[0]:.4g} .. {value[1]:.4g}"  # an interval
        else:
            shown = str(value)
        lines.append(f"| {name} | {shown} |")
    return "\n".join(lines)


def samples_table(header: list[str], rows) -> str:
    """A markdown table of texts side by side: each cell HTML-escaped, its newlines as <br>, its pipes escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for cells in rows:
        lines.append("| " + " | ".join(html.escape(c).replace("\n", "<br>").replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def card_body(title: str, summary: str, sections: dict[str, str]) -> str:
    """The Markdown under the metadata: title, summary, the sections in order and Plumb's version."""
    body = [f"# {title}", summary, *(f"## {heading}\n\n{text}" for heading, text in sections.items())]
    return "\n\n".join([*body, f"_Made with Plumb {__version__}._"]) + "\n"


def make_card(data, body: str):
    """A `ModelCard` (or `DatasetCard`, for `DatasetCardData`) of `data` over `body`, parsed back as the Hub would."""
    from huggingface_hub import DatasetCard, DatasetCardData, ModelCard

    card_class = DatasetCard if isinstance(data, DatasetCardData) else ModelCard
    return card_class(f"---\n{data.to_yaml()}\n---\n\n{body}")


def save_card(directory, data, *, title: str, summary: str, sections: dict[str, str]) -> Path:
    """Write README.md into `directory`: the card data as metadata, then the body; returns its path."""
    path = Path(directory) / "README.md"
    make_card(data, card_body(title, summary, sections)).save(path)
    return path


def write_card(directory, *, title: str, summary: str, metadata: dict, sections: dict[str, str]) -> Path:
    """Write a model card whose metadata are `ModelCardData` keys (None values left out; library transformers)."""
    from huggingface_hub import ModelCardData

    given = {key: value for key, value in metadata.items() if value is not None}
    data = ModelCardData(**{"library_name": "transformers", **given})
    return save_card(directory, data, title=title, summary=summary, sections=sections)


# Naming models and data by their Hub ids


def is_hub_id(name: str) -> bool:
    """True for a well-formed Hub repo id (`org/name` or `name`) that is no local file or directory."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not name or name.startswith((".", "/", "~")) or Path(name).expanduser().exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def hub_model_id(spec: str | None, *, kind: str = "policy", _seen: frozenset = frozenset()) -> str | None:
    """The Hub id a model spec stands for, or None when unknown.

    "default" (or its GGUF, or its cached copy) is the Hub model it was made from; a Hub id is
    itself; a local folder is what it was trained from, followed through its plumb_config.yaml
    or adapter_config.json.
    """
    from plumb import models

    if not spec or spec in _seen:
        return None
    if spec == models.DEFAULT:
        return DEFAULT_HUB_IDS[kind]
    path = Path(spec).expanduser()
    if not path.exists():
        return spec if is_hub_id(spec) else None
    if _same_path(path, _default_paths()):
        return DEFAULT_HUB_IDS["reward" if _same_path(path, _default_paths("reward")) else "policy"]
    origin = read_yaml_file(path / RESOLVED_CONFIG).get("model_name_or_path")
    if origin is None:
        origin = read_json_file(path / "adapter_config.json").get("base_model_name_or_path")
    return hub_model_id(origin, kind=kind, _seen=_seen | {spec})


def _default_paths(kind: str | None = None) -> list[Path]:
    from plumb import models

    paths = []
    try:
        if kind in (None, "policy"):
            gguf = models.default_policy_gguf()
            paths += [gguf, models.gguf_cache_path(gguf)]
        if kind in (None, "reward"):
            paths.append(models.default_reward_dir())
    except models.ModelLoadError:  # a default package is not installed: nothing can be a copy of it
        pass
    return paths


def _same_path(path: Path, candidates: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == candidate.resolve() for candidate in candidates)


def hub_dataset_id(name: str | None) -> str | None:
    """The Hub id of training data: a Hub dataset id, or the Hub source of a shipped set; None for local data."""
    if not name:
        return None
    if name.startswith("builtin:"):
        return BUILTIN_SOURCES.get(name.removeprefix("builtin:"))
    return name if is_hub_id(name) else None


# Model card metadata from a model's folder


def read_yaml_file(path: Path) -> dict:
    """A YAML file's mapping, or {} when the file is absent."""
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


def read_json_file(path: Path) -> dict:
    """A JSON file's mapping, or {} when the file is absent."""
    return json.loads(path.read_text()) if path.is_file() else {}


def evaluation_figures(metrics: dict) -> dict[str, float]:
    """The held-out figures of a metrics.json: every finite number named eval_* or perplexity*, bookkeeping aside."""
    return {
        key: float(value)
        for key, value in metrics.items()
        if key.startswith(("eval_", "perplexity"))
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and not any(word in key for word in NOT_FIGURES)
    }


def eval_results(metrics: dict, *, kind: str, dataset: str, split: str | None) -> list:
    """One `EvalResult` per held-out figure of `metrics` (metric_name the metrics.json key), on `dataset`."""
    from huggingface_hub import EvalResult

    task = PIPELINE_TAGS[kind]
    return [
        EvalResult(
            task_type=task,
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_split=split,
            metric_type=key.removeprefix("eval_").replace("/", "_"),
            metric_name=key,
            metric_value=value,
        )
        for key, value in evaluation_figures(metrics).items()
    ]


def model_card_data(
    model_dir,
    *,
    kind: str,
    tags: list[str],
    model_name: str | None = None,
    base_model: str | None = None,
    datasets: list[str] | None = None,
    license: str | None = None,
    language: list[str] | None = None,
):
    """`ModelCardData` of a trained model folder, from its plumb_config.yaml and metrics.json; arguments override."""
    from huggingface_hub import ModelCardData

    model_dir = Path(model_dir)
    config = read_yaml_file(model_dir / RESOLVED_CONFIG)
    if base_model is None:
        # A Plumb run records where it started ("default" when none was named); another folder may be an adapter
        start = (config.get("model_name_or_path") or "default") if config else str(model_dir)
        base_model = hub_model_id(start, kind=kind)
    data_name = config.get("dataset_name")
    datasets = datasets or [name for name in [hub_dataset_id(data_name)] if name]
    evaluated_on = datasets[0] if datasets else public_name(data_name or "unknown")
    results = eval_results(
        read_json_file(model_dir / METRICS_FILE),
        kind=kind,
        dataset=evaluated_on,
        split=config.get("dataset_test_split"),
    )
    adapter = (model_dir / "adapter_config.json").is_file()
    return ModelCardData(
        # not the folder's name: a run may be written in a temporary folder and renamed into place
        model_name=model_name or "-".join(["plumb", *tags]),
        base_model=base_model,
        datasets=datasets or None,
        license=license or KNOWN_LICENSES.get(base_model),
        language=language,
        library_name="peft" if adapter else "transformers",
        pipeline_tag=PIPELINE_TAGS[kind],
        tags=list(dict.fromkeys(["plumb", "trl", *tags])),
        eval_results=results or None,
    )


def size_category(rows: int) -> str:
    """The Hub's size bucket for a dataset of `rows` rows, e.g. "n<1K"."""
    return next((label for limit, label in SIZE_CATEGORIES if rows < limit), "n>1B")


# Local paths, named so a card can be shared


def local_roots(*extra) -> list[str]:
    """Absolute folders that are this machine's own (working dir, home, temp, Plumb's data, Python), longest first."""
    from plumb.paths import data_dir

    roots = [Path.cwd(), Path.home(), Path(tempfile.gettempdir()), data_dir(), Path(sys.prefix), *map(Path, extra)]
    found = set()
    for root in roots:
        for form in (root.expanduser().absolute(), root.expanduser().resolve()):
            if len(form.parts) >= 2:  # never "/" itself
                found.add(str(form))
    return sorted(found, key=len, reverse=True)


def public_name(path: str) -> str:
    """How a card names a local path: relative to the working directory when inside it, else its last part."""
    if not path or not os.path.isabs(os.path.expanduser(path)):
        return path
    full = Path(path).expanduser()
    try:
        return str(full.relative_to(Path.cwd()))
    except ValueError:
        return full.name or path


def path_pattern(roots: list[str]) -> re.Pattern:
    """A regex matching an absolute path under one of `roots` (up to a space, quote or bracket)."""
    alternatives = "|".join(re.escape(root) for root in roots)
    return re.compile(rf"(?:{alternatives})(?![\w.-])[^\s'\"`()<>\[\]{{}},;]*")


def portable_text(text: str, roots: list[str] | None = None) -> str:
    """`text` with every absolute local path replaced by its `public_name`."""
    return path_pattern(roots or local_roots()).sub(lambda match: public_name(match.group(0)), text)


def portable_value(value, roots: list[str] | None = None):
    """A JSON/YAML value with `portable_text` applied to every string in it."""
    roots = roots or local_roots()
    if isinstance(value, str):
        return portable_text(value, roots)
    if isinstance(value, list):
        return [portable_value(item, roots) for item in value]
    if isinstance(value, dict):
        return {key: portable_value(item, roots) for key, item in value.items()}
    return value
