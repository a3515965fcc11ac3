"""`plumb collect VERB`: the verbs of the people-in-the-loop stage."""

import argparse
import sys

from plumb.cli import EXIT_USAGE, run_verbs
from plumb.config import SuggestingArgumentParser

VERBS = {
    "init": ("collect.init", "create or upgrade the preference database (SQLite file or PostgreSQL URL)"),
    "add-rater": ("collect.add_rater", "add a rater, reviewer or admin and print their API token"),
    "token": ("collect.token", "issue, list, rotate or revoke a rater's API tokens (scopes, expiry)"),
    "import": ("collect.import_prompts", "create a campaign from its YAML and import prompts (and candidates)"),
    "clean": ("collect.clean", "data hygiene on a stored campaign: duplicates, broken rows, outliers; flag or drop"),
    "generate": ("collect.generate", "generate candidates from each policy (transformers or an OpenAI-compatible URL)"),
    "simulate": (
        "collect.simulate",
        "simulated raters judge a campaign through the real scheduler, following a reward model or dataset",
    ),
    "score": (
        "collect.score",
        "a reward model scores a campaign's tasks offline: doubt as priority, pre-labels, auto-labels",
    ),
    "export": ("collect.export", "export judgments as a TRL dataset ({formats})"),
    "quality": (
        "collect.quality",
        "agreement (kappa, alpha, raw), per-rater reliability, aggregated labels, reward-model agreement",
    ),
    "leaderboard": (
        "collect.leaderboard",
        "Bradley-Terry ratings (Elo scale) of policies from battles, bootstrap intervals, win-rate plots",
    ),
    "serve-api": ("collect.serve_api", "serve the REST API (next task, judgments, undo, stats, export)"),
    "serve": ("collect.serve", "serve the Gradio rater app, the REST API and its docs in one process"),
    "backup": ("collect.backup", "back up the database while it is in use (SQLite backup API, or pg_dump)"),
    "restore": ("collect.restore", "restore a backup; refuses a database that holds rows unless --force"),
}


def main(argv: list[str], *, prog: str = "plumb collect") -> int:
    """Dispatch to a verb of the collect stage; a store error (no such rater, campaign...) is one line on stderr."""
    verbs = VERBS if argv and argv[0] in VERBS else with_export_formats(VERBS)
    return run_store_verbs(verbs, argv, prog=prog, description=__doc__)


def with_export_formats(verbs: dict) -> dict:
    """The verbs with export's help naming the formats `plumb collect export` takes (imported only for the help)."""
    from collect.services.export.rows import FORMATS

    module, help_text = verbs["export"]
    return {**verbs, "export": (module, help_text.format(formats=", ".join(FORMATS)))}


def run_store_verbs(verbs: dict, argv: list[str], *, prog: str, description: str) -> int:
    """`plumb.cli.run_verbs` for verbs that use the store: a `StoreError` is one line on stderr and exit status 2."""
    from collect.store.models import StoreError

    try:
        return run_verbs(verbs, argv, prog=prog, description=description)
    except StoreError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE


def verb_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The argument parser of a collect verb: its module docstring as help, and the `--db` option all verbs share."""
    parser = SuggestingArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--db",
        default=None,
        help="database: a SQLite file path, sqlite:///FILE or "
        "postgresql://USER@HOST/NAME (default: $PLUMB_DB, else collect.sqlite in the Plumb data dir)",
    )
    return parser
