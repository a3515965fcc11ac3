"""The export saved and shared: the dataset with summary.json and its card (README.md), and a push to the Hub."""

import hashlib
import json
import logging
from pathlib import Path

from collect.services.export.items import TaskItem
from collect.services.export.rows import ExportArguments, export_rows, summarize
from collect.store import StoreError
from plumb.cards import metrics_table, save_card, size_category
from plumb.data import prompt_key, split_indices_by_prompt

logger = logging.getLogger(__name__)


# Formats a model trains on get a held-out split; the judgments and battles are records of what happened.
SPLIT_FORMATS = ("pairwise", "ranking", "kto", "sft")


def save_export(items: list[TaskItem], args: ExportArguments, *, guidelines: str = "") -> tuple:
    """Rows of `items` in `args.format` written to `args.output_dir`, a Parquet file per split with summary.json and
    README.md, whose `configs` name the files so `datasets.load_dataset(dir)` reads them; (DatasetDict, summary)."""
    import datasets

    rows, left_out = export_rows(items, args)
    splits = split_rows(rows, args)
    summary = summarize(items, rows, left_out, args)
    summary["splits"] = {name: len(split) for name, split in splits.items()}
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    dataset = datasets.DatasetDict({name: datasets.Dataset.from_list(split) for name, split in splits.items()})
    summary["data_files"] = write_parquet_splits(dataset, output)
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    write_dataset_card(output, summary, guidelines)
    logger.info(
        "Exported %d %s rows (%s) from %d tasks to %s; left out: %s",
        len(rows),
        args.format,
        ", ".join(f"{name} {count}" for name, count in summary["splits"].items()),
        len(items),
        output,
        summary["left_out"] or "none",
    )
    return dataset, summary


def split_rows(rows: list[dict], args: ExportArguments) -> dict[str, list[dict]]:
    """{"train": rows} or, with `test_size` and two prompts or more, {"train", "test"} held out by prompt."""
    if not args.test_size or args.format not in SPLIT_FORMATS:
        return {"train": rows}
    keys = [prompt_key(row) for row in rows]
    if len(set(keys)) < 2:
        return {"train": rows}
    train, test = split_indices_by_prompt(keys, test_size=args.test_size, seed=args.seed)
    return {"train": [rows[i] for i in train], "test": [rows[i] for i in test]}


def write_parquet_splits(dataset, output: Path) -> dict[str, str]:
    """Write each split as `SPLIT-DIGEST.parquet` (replacing an earlier export's files there): {split: file name}.

    The digest of the content is in the name because `datasets.load_dataset(dir)` caches a folder whose
    README names its files by the folder's name and those names alone: a second export under the same
    names would be read back from the cache as the first.
    """
    for old in output.glob("*.parquet"):
        old.unlink()
    files = {}
    for name, split in dataset.items():
        staged = output / f".{name}.parquet.partial"
        split.to_parquet(str(staged))
        digest = hashlib.sha256(staged.read_bytes()).hexdigest()[:12]
        files[name] = f"{name}-{digest}.parquet"
        staged.replace(output / files[name])
    return files


def data_files_config(data_files: dict[str, str]) -> list[dict]:
    """The card's `configs` entry: which Parquet file holds which split (what `datasets.load_dataset(dir)` reads)."""
    return [
        {"config_name": "default", "data_files": [{"split": name, "path": path} for name, path in data_files.items()]}
    ]


# The Hub's task categories of each format: the data trains policies to generate text, or reward models to
# classify (score) it; judgments and battles are records of raters' and arena votes.
TASK_CATEGORIES = {
    "pairwise": ["text-generation", "text-classification"],
    "ranking": ["text-generation", "text-classification"],
    "kto": ["text-generation"],
    "sft": ["text-generation"],
    "judgments": ["text-classification"],
    "battles": ["text-classification"],
}
# The raters' judgments are the campaign owner's to license: said at push time (`plumb push --license`).
EXPORT_LICENSE = "unknown"


def write_dataset_card(output: Path, summary: dict, guidelines: str) -> Path:
    """README.md for the Hub (`DatasetCardData`): task and size categories, license, the `configs` naming the data
    files; counts, raters, agreement, what was left out, and the raters' guidelines."""
    from huggingface_hub import DatasetCardData

    left_out = "\n".join(f"- {reason}: {count}" for reason, count in summary["left_out"].items()) or "- nothing"
    counts = {key: summary[key] for key in ("rows", "tasks", "judgments", "raters", "mean_agreement")}
    simulated = summary["judgments_by_rater_kind"].get("simulated", 0)
    who = f"Judgments ({simulated} of {summary['judgments']} by simulated raters)" if simulated else "Human judgments"
    data = DatasetCardData(
        license=EXPORT_LICENSE,
        task_categories=TASK_CATEGORIES[summary["format"]],
        size_categories=[size_category(summary["rows"])],
        pretty_name=f"Plumb campaign {summary['campaign']} ({summary['format']})",
        tags=["plumb", "trl", "preference", summary["format"]],
        configs=data_files_config(summary["data_files"]),
    )
    return save_card(
        output,
        data,
        title=f"Preference data: campaign '{summary['campaign']}' ({summary['format']})",
        summary=f"{who} collected with Plumb and exported in TRL's conversational format"
        + (", one row per rater." if summary["per_rater"] else ", aggregated across raters by majority."),
        sections={
            "Counts": metrics_table(counts),
            "Left out, and why": left_out,
            "Guidelines given to raters": guidelines or "_none_",
        },
    )


class PushError(StoreError):
    """A push to the Hub failed (no network, no token, no access); the message names the repo and the reason.

    A `StoreError`, so the command line prints it as one line, like any other place data cannot be stored.
    """


def push(dataset, output: Path, repo: str, *, dry_run: bool = False, upload_dir: str | None = None) -> str:
    """Push the dataset's splits (Parquet shards) and its card to the Hub repo `repo` in one commit, the card keeping
    the `configs` and `dataset_info` that `datasets` writes (`plumb.push`); `dry_run` only gathers the upload folder.
    Returns the repo URL (or the folder); `PushError` naming the repo when that fails."""
    from plumb.config import ConfigError
    from plumb.push import HubArguments, check_repo_id, push_dataset

    try:
        check_repo_id(repo)
    except ConfigError as error:
        raise PushError(f"'{repo}' is not a Hub repo id (like team/preferences): {error}") from None
    splits = dict(dataset) if isinstance(dataset, dict) else {"train": dataset}
    try:
        return push_dataset(splits, output, repo, hub=HubArguments(upload_dir=upload_dir), dry_run=dry_run)
    except Exception as error:  # network, token and permission errors come from several libraries' hierarchies
        raise PushError(
            f"could not push to the Hub dataset repo '{repo}': {type(error).__name__}: {error} "
            f"(the export is saved in {output})"
        ) from error
