"""`plumb collect export`: a campaign's judgments as a Hugging Face dataset that TRL trains on directly.

The formats, the aggregation across raters and what is left out are described in
`collect.services.export`; the dataset, summary.json and README.md go to `output_dir`.

    plumb collect export --config configs/collect/export.yaml
    plumb collect export --campaign demo --format kto --per_rater --output_dir outputs/demo-kto
"""

import json
from pathlib import Path

from collect.services.export.dataset import push, save_export
from collect.services.export.items import load_items
from collect.services.export.rows import ExportArguments
from collect.store import campaign_by_name, opened_store


def config_types() -> tuple:
    """The dataclasses a `plumb collect export` config fills."""
    return (ExportArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then export."""
    from plumb.config import parse_config

    summary = main(*parse_config(config_types(), argv, prog=prog))
    print(json.dumps(summary, indent=2))
    return 0


def main(args: ExportArguments) -> dict:
    """Export, save to `output_dir` (dataset, summary.json, README.md) and push if asked; returns the summary."""
    # Judgments
    with opened_store(args.db) as sessions, sessions() as session:
        campaign = campaign_by_name(session=session, name=args.campaign)
        items = load_items(session, campaign.id)
        guidelines = campaign.definition.get("guidelines", "")

    # Rows, saved
    dataset, summary = save_export(items, args, guidelines=guidelines)
    if args.push_to_hub:
        push(dataset, Path(args.output_dir), args.push_to_hub)
    return summary
