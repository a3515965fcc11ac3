"""`plumb push PATH REPO`: share a reward model, a policy (SFT, DPO, KTO, online RL) or a dataset on the Hub.

What goes up is first gathered in one folder, the upload folder (`--upload_dir`; by default
PATH.hub beside PATH for a dry run, a temporary folder otherwise): the files, a README.md
card built with huggingface_hub's card classes (base model and data as Hub ids, license,
language, pipeline tag, the held-out figures as `model-index`), and nothing that names a
local absolute path: plumb_config.yaml and other JSON/YAML files have such paths rewritten,
a LoRA adapter names its base model by Hub id, trainer pickles and checkpoints stay behind,
and a last check refuses the upload if any file still holds one. `--dry_run` stops there.
A dataset (an export folder, a saved dataset or a data file) is written as Parquet shards
in `datasets`' own layout, its card keeping what the export wrote and carrying the `configs`
and `dataset_info` that `datasets.push_to_hub` writes, so the Hub page and `load_dataset` agree.

    plumb push outputs/dpo-demo my-org/smollm2-dpo --dry_run     # gathers outputs/dpo-demo.hub/, uploads nothing
    plumb push outputs/reward-demo my-org/plumb-reward
    plumb push outputs/collect-export my-org/preferences --license cc-by-4.0
"""

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from plumb.cards import (
    card_body,
    local_roots,
    make_card,
    metrics_table,
    model_card_data,
    path_pattern,
    portable_text,
    portable_value,
    read_json_file,
    size_category,
)
from plumb.config import ConfigError, parse_config
from plumb.data import FILE_FORMATS
from plumb.model_files import missing_model_files

logger = logging.getLogger(__name__)

# Left behind: checkpoints, logs, trainer pickles (they hold absolute paths) and optimizer state.
SKIPPED_DIRS = ("runs", "wandb", "logs")
SKIPPED_FILES = ("training_args.bin", "optimizer.pt", "scheduler.pt", "trainer_state.json", "README.md")
REWRITTEN = (".json", ".yaml", ".yml")
# Weights and data: checked for nothing (large, and binary); every other file is scanned for local paths.
BINARY = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".parquet", ".arrow", ".png", ".jpg")
UNKNOWN_LICENSE = "unknown"
DATASET_TASKS = ["text-generation"]


@dataclass
class PushArguments:
    """What to push where."""

    path: str | None = field(default=None, metadata={"help": "The model folder, dataset folder or data file."})
    repo_id: str | None = field(default=None, metadata={"help": "The Hub repository, e.g. my-org/smollm2-dpo."})
    private: bool = field(default=False, metadata={"help": "Create the Hub repository as private."})
    dry_run: bool = field(
        default=False, metadata={"help": "Gather the upload folder (files and card) and check it; upload nothing."}
    )
    commit_message: str = field(default="Upload with Plumb", metadata={"help": "The Hub commit message."})


@dataclass
class HubArguments:
    """Where the upload is gathered, and what its card says beyond what the folder records."""

    upload_dir: str | None = field(
        default=None,
        metadata={
            "help": "Where the files to upload are gathered, README.md included (default: PATH.hub beside PATH "
            "for a dry run, a temporary folder otherwise). Replaced if it holds an earlier upload."
        },
    )
    base_model: str | None = field(
        default=None,
        metadata={
            "help": "Hub id of the model this one was trained from (default: worked out from plumb_config.yaml; "
            "the offline defaults are named by their Hub ids)."
        },
    )
    datasets: list[str] | None = field(
        default=None,
        metadata={"help": "Hub ids of the training data, when it was local (e.g. an export pushed with plumb push)."},
    )
    license: str | None = field(
        default=None,
        metadata={"help": "A Hub license id (default: the base model's when known, e.g. apache-2.0, else 'unknown')."},
    )
    language: list[str] = field(default_factory=lambda: ["en"], metadata={"help": "Languages of the text (ISO 639)."})


def config_types() -> tuple:
    """The dataclasses a `plumb push` config fills."""
    return PushArguments, HubArguments


def main(argv: list[str], *, prog: str = "plumb push") -> int:
    """Parse `PATH REPO` and flags, then push (or gather only, with --dry_run)."""
    positional = []
    while argv and not argv[0].startswith("-") and len(positional) < 2:
        positional.append(argv.pop(0))
    flags = [item for key, value in zip(("--path", "--repo_id"), positional) for item in (key, value)]
    push(*parse_config(config_types(), [*flags, *argv], prog=prog))
    return 0


def push(args: PushArguments, hub: HubArguments) -> str:
    """Push the model or dataset at `args.path` by what it holds; returns the repository URL (the folder, dry run)."""
    if not args.path or not args.repo_id:
        raise ConfigError("command line: name what to push and where: plumb push PATH REPO")
    check_repo_id(args.repo_id)
    path = Path(args.path)
    kind = folder_kind(path)
    options = {"private": args.private, "dry_run": args.dry_run, "commit_message": args.commit_message}
    if kind == "dataset":
        return push_dataset(load_dataset_splits(path), path, args.repo_id, hub=hub, **options)
    return push_model(path, args.repo_id, kind=kind, hub=hub, **options)


def folder_kind(path: Path) -> str:
    """What `path` holds: "reward" (a sequence classifier), "policy" (a causal LM or its adapter) or "dataset"."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file or directory")
    if path.is_dir() and (path / "adapter_config.json").is_file():
        task = read_json_file(path / "adapter_config.json").get("task_type")
        return "reward" if task == "SEQ_CLS" else "policy"
    if path.is_dir() and (path / "config.json").is_file():
        architectures = read_json_file(path / "config.json").get("architectures") or []
        return "reward" if any(name.endswith("ForSequenceClassification") for name in architectures) else "policy"
    return "dataset"


# Models


def push_model(
    model_dir, repo_id: str, *, kind: str, hub: HubArguments, private=False, dry_run=False, commit_message=None
) -> str:
    """Gather a trained model folder with its Hub card and upload it; returns the URL (the upload folder, dry run)."""
    model_dir = Path(model_dir)
    check_repo_id(repo_id)
    missing = missing_model_files(model_dir)
    if missing:
        raise ConfigError(f"{model_dir}: no trained model here (no {' and no '.join(missing)})")
    with upload_folder(model_dir, hub.upload_dir, keep=dry_run) as folder:
        stage_model(model_dir, folder, repo_id=repo_id, kind=kind, hub=hub)
        if dry_run:
            logger.info("Dry run: the upload to %s is gathered in %s; nothing uploaded.", repo_id, folder)
            return str(folder)
        return upload(folder, repo_id, repo_type="model", private=private, commit_message=commit_message)


def stage_model(model_dir: Path, folder: Path, *, repo_id: str, kind: str, hub: HubArguments) -> Path:
    """Fill `folder` with what a model upload holds: its files, made portable, and README.md; returns the card."""
    roots = local_roots(model_dir)
    card = hub_model_card(model_dir, repo_id=repo_id, kind=kind, hub=hub)
    for source in sorted(model_dir.rglob("*")):
        relative = source.relative_to(model_dir)
        if source.is_dir() or skipped(relative) or folder.resolve() in source.resolve().parents:
            continue
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative == Path("adapter_config.json"):
            adapter = read_json_file(source)
            adapter["base_model_name_or_path"] = card.data.base_model or adapter.get("base_model_name_or_path")
            target.write_text(json.dumps(portable_value(adapter, roots), indent=2) + "\n")
        elif source.suffix in REWRITTEN:
            rewrite_portable(source, target, roots)
        else:
            shutil.copy2(source, target)
    card.save(folder / "README.md")
    check_portable(folder, roots)
    return folder / "README.md"


def hub_model_card(model_dir: Path, *, repo_id: str, kind: str, hub: HubArguments):
    """The Hub card of a model folder: metadata from its files and `hub`, over the body of the card it has."""
    from huggingface_hub import ModelCard

    local = ModelCard.load(model_dir / "README.md") if (model_dir / "README.md").is_file() else None
    data = model_card_data(
        model_dir,
        kind=kind,
        tags=list((local.data.tags if local else None) or []),
        model_name=repo_id.split("/")[-1],
        base_model=hub.base_model,
        datasets=hub.datasets,
        license=hub.license,
        language=hub.language,
    )
    if data.base_model is None:
        logger.warning("%s: the base model is not known from the folder; name it with --base_model", model_dir)
    if data.license is None:
        data.license = UNKNOWN_LICENSE
        logger.warning("%s: license '%s'; set one with --license", model_dir, UNKNOWN_LICENSE)
    metrics = read_json_file(model_dir / "metrics.json")
    body = (
        local.text
        if local
        else card_body(f"{model_dir.name}", "Trained with Plumb.", {"Metrics": metrics_table(metrics)})
    )
    return make_card(data, portable_text(body, local_roots(model_dir)))


def skipped(relative: Path) -> bool:
    """True for what stays behind: checkpoints, logs, trainer state, hidden and partial files, the local card."""
    first = relative.parts[0]
    return (
        first.startswith(("checkpoint-", "."))
        or first in SKIPPED_DIRS
        or relative.name in SKIPPED_FILES
        or relative.name.endswith((".partial", ".lock"))
    )


def rewrite_portable(source: Path, target: Path, roots: list[str]) -> None:
    """Copy a JSON/YAML file; one naming a local absolute path is rewritten with those paths made public names."""
    text = source.read_text()
    if not path_pattern(roots).search(text):
        shutil.copy2(source, target)
        return
    if source.suffix == ".json":
        target.write_text(json.dumps(portable_value(json.loads(text), roots), indent=2) + "\n")
    else:
        target.write_text(yaml.safe_dump(portable_value(yaml.safe_load(text), roots), sort_keys=False))
    logger.info("%s: local paths rewritten for the upload", source.name)


def check_portable(folder: Path, roots: list[str] | None = None) -> None:
    """Refuse an upload folder in which any file (weights and data aside) names a local absolute path."""
    pattern = path_pattern(roots or local_roots())
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix not in BINARY:
            found = pattern.search(path.read_bytes().decode("utf-8", errors="replace"))
            if found:
                raise ConfigError(
                    f"{path}: names the local path {found.group(0)}, which must not be uploaded; nothing was pushed"
                )


# Datasets


def load_dataset_splits(path: Path) -> dict:
    """{split: Dataset} of a dataset folder (save_to_disk, or data files with a README) or a data file."""
    import datasets

    if path.is_file():
        if path.suffix not in FILE_FORMATS:
            raise ConfigError(f"{path}: not a model folder and not a data file ({', '.join(FILE_FORMATS)})")
        return {"train": datasets.load_dataset(FILE_FORMATS[path.suffix], data_files=str(path), split="train")}
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        loaded = datasets.load_from_disk(str(path))
        return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    try:
        return dict(datasets.load_dataset(str(path)))
    except Exception as error:  # datasets raises many types for "no data here"
        raise ConfigError(f"{path}: neither a model folder nor a dataset ({type(error).__name__}: {error})") from None


def push_dataset(
    splits: dict, source, repo_id: str, *, hub: HubArguments, private=False, dry_run=False, commit_message=None
) -> str:
    """Gather a dataset's splits as Parquet shards with its Hub card (source/README.md, when `source` is a folder
    that has one) and upload them; returns the repository URL (the upload folder, dry run)."""
    check_repo_id(repo_id)
    source = Path(source)
    card_file = source / "README.md" if (source / "README.md").is_file() else None
    with upload_folder(source, hub.upload_dir, keep=dry_run) as folder:
        stage_dataset(splits, folder, hub=hub, card_file=card_file)
        if dry_run:
            logger.info("Dry run: the upload to %s is gathered in %s; nothing uploaded.", repo_id, folder)
            return str(folder)
        # data/* goes first: the repository then holds this dataset, not shards left from an earlier push
        return upload(
            folder,
            repo_id,
            repo_type="dataset",
            private=private,
            commit_message=commit_message,
            delete_patterns=["data/*"],
        )


def stage_dataset(splits: dict, folder: Path, *, hub: HubArguments, card_file=None) -> Path:
    """Fill `folder` with Parquet shards (`data/SPLIT-00000-of-00001-DIGEST.parquet`, as `push_to_hub` names them) and
    README.md: the given card with the `configs` and `dataset_info` datasets writes; returns the card's path."""
    from datasets import DatasetInfo, SplitDict, SplitInfo
    from datasets.info import DatasetInfosDict
    from datasets.utils.metadata import MetadataConfigs
    from huggingface_hub import DatasetCard

    (folder / "data").mkdir(parents=True, exist_ok=True)
    features = next(iter(splits.values())).features
    info = DatasetInfo(features=features, splits=SplitDict(), download_size=0, dataset_size=0)
    files = {}
    for name, split in splits.items():
        shard = folder / "data" / f"{name}.partial"
        split.to_parquet(str(shard))
        # Named by the file, with its content's digest: `load_dataset` caches a local folder by what its card says,
        # and would read an earlier dry run's rows back for a card that names the same files
        digest = hashlib.sha256(shard.read_bytes()).hexdigest()[:12]
        shard = shard.rename(shard.with_name(f"{name}-00000-of-00001-{digest}.parquet"))
        files[name] = f"data/{shard.name}"
        info.splits.add(SplitInfo(name=name, num_bytes=split.data.nbytes, num_examples=len(split)))
        info.download_size += shard.stat().st_size
        info.dataset_size += split.data.nbytes
    info.size_in_bytes = info.download_size + info.dataset_size

    local = DatasetCard.load(card_file) if card_file and Path(card_file).is_file() else None
    data = local.data if local else DatasetCard("---\n---\n").data
    configs = {"default": {"data_files": [{"split": name, "path": path} for name, path in files.items()]}}
    MetadataConfigs(configs).to_dataset_card_data(data)
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    data.license = hub.license or data.license or UNKNOWN_LICENSE
    data.language = data.language or hub.language
    data.task_categories = data.task_categories or DATASET_TASKS
    data.size_categories = [size_category(sum(len(split) for split in splits.values()))]
    roots = local_roots(*([Path(card_file).parent] if card_file else []))
    body = local.text if local else card_body("Dataset", "Shared with Plumb.", {})
    make_card(data, portable_text(body, roots)).save(folder / "README.md")
    check_portable(folder, roots)
    return folder / "README.md"


# The upload folder and the upload


def check_repo_id(repo_id: str) -> None:
    """A `ConfigError` unless `repo_id` is a well-formed Hub repository id."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ConfigError(f"command line: '{repo_id}' is not a Hub repository id (like my-org/name): {error}") from None


@contextlib.contextmanager
def upload_folder(source: Path, chosen: str | None, *, keep: bool):
    """The folder an upload is gathered in: `chosen`, else SOURCE.hub beside `source` when kept (dry run), else a
    temporary folder removed afterwards. An earlier upload folder (it has a README.md) is replaced; any other
    non-empty folder is refused."""
    if chosen is None and keep:
        chosen = str(source.with_name(source.name + ".hub"))
    path = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="plumb-upload-"))
    if path.exists() and any(path.iterdir()):
        if not (path / "README.md").is_file():
            raise ConfigError(f"{path}: the upload folder is not empty; name another with --upload_dir")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    finally:
        if chosen is None:
            shutil.rmtree(path, ignore_errors=True)


def upload(folder: Path, repo_id: str, *, repo_type: str, private: bool, commit_message, delete_patterns=None) -> str:
    """Create the Hub repository if needed and upload `folder` in one commit; returns the repository URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    kind = {} if repo_type == "model" else {"repo_type": repo_type}
    url = api.create_repo(repo_id, private=private, exist_ok=True, **kind)
    options = {"delete_patterns": delete_patterns} if delete_patterns else {}
    api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        commit_message=commit_message or "Upload with Plumb",
        **kind,
        **options,
    )
    logger.info("Pushed %s to %s", folder, url)
    return str(url)
