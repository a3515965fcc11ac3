"""The export saved and shared: the dataset with summary.json and its card (README.md), and a push to the Hub."""

import json
import logging
from pathlib import Path

from collect.services.export.items import TaskItem
from collect.services.export.rows import ExportArguments, export_rows, summarize
from collect.store import StoreError
from plumb.cards import metrics_table, write_card

logger = logging.getLogger(__name__)


def save_export(items: list[TaskItem], args: ExportArguments, *, guidelines: str = "") -> tuple:
    """Rows of `items` in `args.format`, saved to `args.output_dir` with summary.json, README.md: (dataset, summary)."""
    import datasets

    rows, left_out = export_rows(items, args)
    dataset = datasets.Dataset.from_list(rows)
    summary = summarize(items, rows, left_out, args)
    output = Path(args.output_dir)
    dataset.save_to_disk(str(output))
    (output / "summary.json").write_text(json.dumps(summary, indent=2))
    write_dataset_card(output, summary, guidelines)
    logger.info(
        "Exported %d %s rows from %d tasks to %s; left out: %s",
        len(rows),
        args.format,
        len(items),
        output,
        summary["left_out"] or "none",
    )
    return dataset, summary


def write_dataset_card(output: Path, summary: dict, guidelines: str) -> Path:
    """README.md for the Hub: counts, raters, agreement, what was left out, and the raters' guidelines."""
    left_out = "\n".join(f"- {reason}: {count}" for reason, count in summary["left_out"].items()) or "- nothing"
    counts = {key: summary[key] for key in ("rows", "tasks", "judgments", "raters", "mean_agreement")}
    simulated = summary["judgments_by_rater_kind"].get("simulated", 0)
    who = f"Judgments ({simulated} of {summary['judgments']} by simulated raters)" if simulated else "Human judgments"
    return write_card(
        output,
        title=f"Preference data: campaign '{summary['campaign']}' ({summary['format']})",
        summary=f"{who} collected with Plumb and exported in TRL's conversational format"
        + (", one row per rater." if summary["per_rater"] else ", aggregated across raters by majority."),
        metadata={"library_name": "datasets", "tags": ["plumb", "trl", "preference", summary["format"]]},
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


def push(dataset, output: Path, repo: str) -> None:
    """Push the dataset and its card to the Hub repo `repo`; `PushError` naming the repo when that fails."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo)
    except HFValidationError as error:
        raise PushError(f"'{repo}' is not a Hub repo id (like team/preferences): {error}") from None
    try:
        dataset.push_to_hub(repo)
        HfApi().upload_file(
            path_or_fileobj=str(output / "README.md"), path_in_repo="README.md", repo_id=repo, repo_type="dataset"
        )
    except Exception as error:  # network, token and permission errors come from several libraries' hierarchies
        raise PushError(
            f"could not push to the Hub dataset repo '{repo}': {type(error).__name__}: {error} "
            f"(the export is saved in {output})"
        ) from error
