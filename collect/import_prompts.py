"""Create a campaign from its YAML (if new) and import prompts, or prompts with candidates, all or nothing.

    plumb collect import --campaign configs/collect/campaigns/demo.yaml --db campaign.sqlite
    plumb collect import --campaign FILE --source rows.jsonl   # JSONL, Parquet, a saved dataset or a Hub id
    plumb collect import --campaign FILE --source label-studio-export.json   # or an Argilla preference dataset

Each row is in the contract's prompts format: `prompt` (messages or text) and an
optional `prompt_id`; a `messages` conversation (the SFT format) gives its turns before
the last assistant reply as the prompt. Rows may carry `candidates` already generated,
a list of `{"policy": NAME, "completion": messages or text}` (with an optional
`"oracle_score": number`, a dataset's own label that `plumb collect simulate --oracle
dataset` follows), and `gold: {"ranks": [...]}`
(one rank per candidate, 1 = best) to make their tasks gold tasks. A bad row stops the
import with its row number, and nothing is stored.

Raters keep working during a long import: it is written in short transactions into a
hidden staging campaign, and its tasks join the campaign together at the end. An import
that was killed leaves nothing visible; the next import into that campaign clears what it left.
"""

import json

from collect.cli import verb_parser
from collect.services.campaign_import import import_campaign


def cli(argv: list[str], *, prog: str) -> int:
    """Parse the campaign file and source, then import."""
    parser = verb_parser(prog, __doc__)
    parser.add_argument("--campaign", required=True, help="the campaign YAML (configs/collect/campaigns/*.yaml)")
    parser.add_argument("--source", help="rows to import (default: the campaign's `prompts`)")
    parser.add_argument("--split", default=None, help="split of the source (default: the campaign's prompts_split)")
    args = parser.parse_args(argv)
    counts = main(args.campaign, source=args.source, split=args.split, db=args.db)
    print(json.dumps(counts))
    return 0


def main(campaign_file: str, *, source: str | None = None, split: str | None = None, db: str | None = None) -> dict:
    """Import rows into the campaign (created from `campaign_file` when new); returns what was added, and totals."""
    return import_campaign(campaign_file, source=source, split=split, db=db)
