"""`plumb collect clean`: the data-hygiene rules of `plumb collect import` applied to a campaign already stored.

Empty or broken prompts and answers, duplicate and near-duplicate prompts, repeated answers,
candidates of one task alike, length outliers and text in another language than the
campaign's: each rule's findings are kept (reported only), flagged for reviewers, or dropped.
A dropped task leaves the pool and nothing is deleted; a task a rater has judged (or holds
now) is flagged instead, and the report says so. The rules and thresholds are the campaign's
`hygiene` block, with this command's keys on top; the report (JSON) goes to --output_dir,
by default beside the SQLite file, and its table is printed.

    plumb collect clean --db campaign.sqlite --campaign demo
    plumb collect clean --config configs/collect/clean.yaml --duplicate_prompt drop --near_duplicate_threshold 0.9
"""

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from collect.domain.hygiene import ACTIONS, RULES, HygieneSettings, settings_problem

DEFAULTS = HygieneSettings()


@dataclass
class CleanArguments:
    """Which campaign, in which database, and where the report goes."""

    campaign: str | None = field(default=None, metadata={"help": "Name of the campaign to clean."})
    db: str | None = field(
        default=None,
        metadata={
            "help": "Database URL or SQLite file (default: $PLUMB_DB, else collect.sqlite in the Plumb data dir)."
        },
    )
    output_dir: str | None = field(
        default=None, metadata={"help": "Where the report goes (default: beside the SQLite file, else here)."}
    )
    language: str | None = field(
        default=None, metadata={"help": "ISO 639-1 code for the language check (default: the campaign's language)."}
    )


def _override(setting: dataclasses.Field):
    """A key of the clean config standing for one hygiene setting: None leaves the campaign's (or the default)."""
    default = getattr(DEFAULTS, setting.name)
    choices = f" ({'|'.join(ACTIONS)})" if setting.name in RULES else ""
    metadata = {"help": f"{setting.metadata['help']}{choices} Default: the campaign's hygiene block, else {default}."}
    return setting.name, setting.type | None, field(default=None, metadata=metadata)


def _check_overrides(self) -> None:
    for rule in RULES:
        if getattr(self, rule) in ("False", "false"):  # YAML 1.1 reads an unquoted `off` as false
            setattr(self, rule, "off")
    chosen = {key: value for key, value in vars(self).items() if value is not None}
    problem = settings_problem(HygieneSettings(**chosen))
    if problem:
        raise ValueError(f"key '{problem[0]}': {problem[1]}")


# Made from `HygieneSettings`, so the clean config and a campaign's `hygiene` block have the same keys.
HygieneOverrides = dataclasses.make_dataclass(
    "HygieneOverrides",
    [_override(f) for f in dataclasses.fields(HygieneSettings) if f.name != "language"],
    namespace={"__post_init__": _check_overrides, "__doc__": "Per hygiene rule off|keep|flag|drop, and thresholds."},
)
# Python 3.11's make_dataclass names `types` as the module; the early flag check stamps the defining file.
HygieneOverrides.__module__ = __name__


def config_types() -> tuple:
    """The dataclasses a `plumb collect clean` config fills."""
    return (CleanArguments, HygieneOverrides)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, clean, print the table and where the report is."""
    from plumb.config import parse_config

    args, overrides = parse_config(config_types(), argv, prog=prog)
    report, path = main(args, overrides)
    from collect.domain.hygiene_report import table

    print(table(report))
    print(json.dumps({"campaign": args.campaign, "report": str(path), "totals": report["totals"]}))
    return 0


def main(args: CleanArguments, overrides=None) -> tuple[dict, Path]:
    """Clean the campaign in `args.db` with its hygiene settings and `overrides`; returns (report, its path)."""
    from collect.domain.campaign import spec_of
    from collect.services.hygiene import campaign_settings
    from collect.services.hygiene_clean import clean_campaign
    from collect.store import StoreError, campaign_by_name, opened_store
    from collect.store.engine import sqlite_file

    if not args.campaign:
        raise StoreError("name the campaign to clean: --campaign NAME")
    chosen = vars(overrides) if overrides is not None else {}
    with opened_store(args.db) as sessions:
        with sessions() as session:
            spec = spec_of(campaign_by_name(session=session, name=args.campaign))
        settings = campaign_settings(spec, language=args.language, **chosen)
        database = sqlite_file(args.db)
        output_dir = args.output_dir or (database.parent if database else Path.cwd())
        return clean_campaign(sessions, args.campaign, settings, output_dir=output_dir)
