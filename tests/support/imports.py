"""Imports with labels: the fixture files (tests/collect/fixtures/imports), a store to import into, what it holds."""

import gzip
import json
import shutil
from pathlib import Path

from sqlalchemy import func, select

from collect import import_prompts
from collect.init import main as init_main
from collect.store import Campaign, Candidate, Judgment, Policy, Prompt, Rater, Task, open_store

FIXTURES = Path(__file__).resolve().parents[1] / "collect" / "fixtures" / "imports"


def fixture_path(name: str) -> Path:
    """The path of a fixture file, built in its tool's documented shape."""
    return FIXTURES / name


def fixture_records(name: str) -> list[dict]:
    """A fixture file's records, read with the standard library alone (a JSON array or JSON Lines)."""
    text = fixture_path(name).read_text()
    return json.loads(text) if name.endswith(".json") else [json.loads(line) for line in text.splitlines() if line]


def gzipped(name: str, folder: Path) -> str:
    """A gzip copy of a fixture file in `folder` (`NAME.gz`), as hh-rlhf and HelpSteer2 ship theirs."""
    target = folder / f"{name}.gz"
    with open(fixture_path(name), "rb") as source, gzip.open(target, "wb") as packed:
        shutil.copyfileobj(source, packed)
    return str(target)


def empty_store_copy(template: Path, folder: Path) -> str:
    """A copy of an initialised, empty SQLite store (made once with `plumb collect init`) in `folder`."""
    if not template.exists():
        init_main(str(template))
    target = folder / "collect.sqlite"
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{template}{suffix}").exists():
            shutil.copy(f"{template}{suffix}", f"{target}{suffix}")
    return str(target)


def import_into(db: str, folder: Path, source, *, kind: str = "pairwise", name: str = "moved-in", **options) -> dict:
    """Import `source` into a new campaign of `kind` (extra YAML keys from `options` named `yaml_*`); the summary."""
    extra = "".join(f"{key[5:]}: {value}\n" for key, value in options.items() if key.startswith("yaml_"))
    campaign = folder / f"{name}.yaml"
    campaign.write_text(f"name: {name}\nkind: {kind}\n{extra}")
    flags = {key: value for key, value in options.items() if not key.startswith("yaml_")}
    return import_prompts.main(str(campaign), source=str(source), db=db, **flags)


def stored_judgments(db: str, campaign: str = "moved-in") -> list[dict]:
    """Every judgment of the campaign: its prompt id, rater (name, kind), the task's candidates in canonical order
    (policy and text) and the answer."""
    sessions = open_store(db)
    with sessions() as session:
        rows = session.execute(
            select(Prompt.external_id, Rater.name, Rater.kind, Task.candidate_ids, Judgment)
            .join(Task, Task.id == Judgment.task_id)
            .join(Prompt, Prompt.id == Task.prompt_id)
            .join(Campaign, Campaign.id == Task.campaign_id)
            .join(Rater, Rater.id == Judgment.rater_id)
            .where(Campaign.name == campaign)
            .order_by(Judgment.id)
        ).all()
        found = []
        for prompt_id, rater, kind, candidate_ids, judgment in rows:
            candidates = [session.get(Candidate, cid) for cid in candidate_ids]
            found.append(
                {
                    "prompt": prompt_id,
                    "rater": rater,
                    "kind": kind,
                    "policies": [session.get(Policy, c.policy_id).name for c in candidates],
                    "texts": [
                        "".join(m["content"] for m in c.completion if m["role"] == "assistant") for c in candidates
                    ],
                    "preference": judgment.preference,
                    "both_bad": judgment.both_bad,
                    "ranks": judgment.ranks,
                    "ratings": judgment.ratings,
                }
            )
    sessions.kw["bind"].dispose()
    return found


def table_counts(db: str, *models) -> list[int]:
    """How many rows each table (model) holds."""
    sessions = open_store(db)
    with sessions() as session:
        counts = [session.scalar(select(func.count()).select_from(model)) for model in models]
    sessions.kw["bind"].dispose()
    return counts


def winner_text(judgment: dict) -> str | None:
    """The text a pairwise judgment prefers (None for a tie or both bad)."""
    if judgment["both_bad"] or not judgment["preference"]:
        return None
    return judgment["texts"][0] if judgment["preference"] > 0 else judgment["texts"][1]
