"""Create a campaign from its YAML (if new) and import prompts, candidates and judgments, all or nothing.

    plumb collect import --campaign configs/collect/campaigns/demo.yaml --db campaign.sqlite
    plumb collect import --campaign FILE --source rows.jsonl   # JSONL(.gz), JSON, Parquet, CSV, a dataset dir, a Hub id
    plumb collect import --campaign FILE --source project-1-at-2026.json   # another tool's export, labels and all

Each row is in the contract's prompts format: `prompt` (messages or text) and an
optional `prompt_id`; a `messages` conversation (the SFT format) gives its turns before
the last assistant reply as the prompt. Rows may carry `candidates` already generated,
a list of `{"policy": NAME, "completion": messages or text}` (with an optional
`"oracle_score": number`, a dataset's own label that `plumb collect simulate --oracle
dataset` follows), `gold: {"ranks": [...]}` (one rank per candidate, 1 = best) to make
their tasks gold tasks, and `judgments` already given, over the row's candidates:
`{"rater": NAME, "ranks": [1, 2]}` (1 = best, ties share, null = unranked; add
`"both_bad": true` for two bad answers) or `{"rater": NAME, "ratings": [4, 2], "scale": [1, 5]}`.

Other tools' exports and the field's datasets are read as they are, with their labels:
Label Studio JSON exports (the RLHF / pairwise, Pairwise Classification and LLM Ranker
templates), Argilla 1.x and 2.x preference datasets (ranking, rating and label answers),
OpenAssistant message trees (their ranks), Chatbot Arena battle logs, UltraFeedback and
HelpSteer rated completions, and chosen/rejected pairs such as hh-rlhf. Each annotator of
the source becomes a rater of kind `imported` (named after the source's user id, or after
the file when it records none) and each annotation a judgment, so agreement, quality
reports, the leaderboard and exports use them at once. Labels go onto the campaign's kind
of task: a ranking or a choice onto pairwise tasks (its pairs) or a ranking task; ratings
onto rating tasks (when the scales match), or as ranks or pairs; a ranking cannot become a
rating. Records nobody annotated are imported without labels, counted and warned about;
what could not be used is counted by reason in the printed summary.

With a `hygiene` block in the campaign (`hygiene: {}` for the defaults), data-hygiene rules
screen the rows first: empty or broken rows, duplicate and near-duplicate prompts (MiniLM
embeddings), repeated answers, candidates of one task alike, length outliers, and text in
another language than the campaign's `language`. Each rule keeps, flags (for reviewers) or
drops what it finds; a row that carries judgments is flagged, never dropped. The report
(JSON) is written beside the campaign YAML (or into --report-dir), its table printed on
stderr, and its counts per rule are in the printed summary.

A bad row stops the import with its row number and field, and nothing is stored. Raters
keep working during a long import: it is written in short transactions into a hidden
staging campaign, and its tasks join the campaign together at the end. An import that
was killed leaves nothing visible; the next import into that campaign clears what it left.
"""

import json
import sys

from collect.cli import verb_parser
from collect.services.campaign_import import import_campaign


def cli(argv: list[str], *, prog: str) -> int:
    """Parse the campaign file and source, then import and print the summary."""
    parser = verb_parser(prog, __doc__)
    parser.add_argument("--campaign", required=True, help="the campaign YAML (configs/collect/campaigns/*.yaml)")
    parser.add_argument("--source", help="rows to import (default: the campaign's `prompts`)")
    parser.add_argument("--split", default=None, help="split of the source (default: the campaign's prompts_split)")
    parser.add_argument(
        "--label-field",
        default=None,
        help="which label of the source to import: an Argilla question, an UltraFeedback aspect or score "
        "(default fine-grained_score), a HelpSteer attribute (default helpfulness)",
    )
    parser.add_argument(
        "--report-dir", default=None, help="where the hygiene report goes (default: beside the campaign YAML)"
    )
    args = parser.parse_args(argv)
    counts = main(
        args.campaign,
        source=args.source,
        split=args.split,
        db=args.db,
        label_field=args.label_field,
        report_dir=args.report_dir,
    )
    if "hygiene" in counts:
        print(hygiene_table(counts["hygiene"]), file=sys.stderr)
    print(json.dumps(counts))
    return 0


def main(
    campaign_file: str,
    *,
    source: str | None = None,
    split: str | None = None,
    db: str | None = None,
    label_field: str | None = None,
    report_dir: str | None = None,
) -> dict:
    """Import rows into the campaign (created from `campaign_file` when new); returns what was added, and totals."""
    return import_campaign(
        campaign_file, source=source, split=split, db=db, label_field=label_field, report_dir=report_dir
    )


def hygiene_table(counts: dict) -> str:
    """The import's hygiene counts (`collect.services.hygiene.summary`) as a short table, one line per rule."""
    from collect.domain.hygiene_report import table

    return table(counts)
