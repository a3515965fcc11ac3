"""Import into a campaign: create it from its YAML when new, then store prompts (and candidates) in one transaction.

Rows are in the format `plumb collect import --help` describes (the contract's prompts
format, optionally with `candidates` and `gold` ranks); Label Studio and Argilla exports
are read too (`collect.domain.foreign_exports`). A bad row stops the import with its row
number, and nothing is stored.
"""

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from collect.domain.campaign import as_definition, load_campaign, spec_of
from collect.domain.foreign_exports import to_import_rows
from collect.store import (
    CampaignError,
    add_candidate,
    add_prompt,
    build_tasks,
    campaign_by_name,
    campaign_counts,
    create_campaign,
    ensure_policy,
    opened_store,
)
from plumb.data import DataError, load_records, message_problem

logger = logging.getLogger(__name__)


@dataclass
class ImportRow:
    """One checked input row: a prompt, its candidates as (policy, completion, settings), its gold ranks if any."""

    prompt_id: str
    messages: list
    candidates: list[tuple[str, list, dict]] = field(default_factory=list)
    gold_ranks: list[int] | None = None


def import_campaign(
    campaign_file: str, *, source: str | None = None, split: str | None = None, db: str | None = None
) -> dict:
    """Import rows into the campaign (created from `campaign_file` when new); returns what was added, and totals."""
    spec = load_campaign(campaign_file)
    source = source or spec.prompts
    if not source:
        raise DataError(f"{campaign_file}: no `prompts` source in the campaign and no --source given")
    records = read_source(source, split or spec.prompts_split)
    rows = read_rows(to_import_rows(records, source=source), source=source)

    with opened_store(db) as sessions, sessions.begin() as session:  # one transaction: a failure stores nothing
        try:
            campaign = campaign_by_name(session=session, name=spec.name)
            if campaign.definition != as_definition(spec):
                logger.warning("Campaign '%s' exists: its stored definition is kept, not %s", spec.name, campaign_file)
            spec = spec_of(campaign)
        except CampaignError:
            campaign = create_campaign(session=session, name=spec.name, kind=spec.kind, definition=as_definition(spec))
        for policy in spec.policies:
            ensure_policy(session=session, campaign=campaign, name=policy.name, spec=policy.model)
        gold = {}
        for index, row in enumerate(rows):
            try:
                gold.update(store_row(session, campaign, row))
            except CampaignError as error:
                raise DataError(f"{source}: row {index}: {error}") from None
        tasks = build_tasks(session=session, campaign=campaign, overlap=spec.raters_per_task, gold_answers=gold)
        counts = {
            "campaign": spec.name,
            "rows": len(rows),
            "new_tasks": len(tasks),
            **campaign_counts(session=session, campaign=campaign),
        }
    logger.info("Imported %d rows into campaign '%s': %s", len(rows), spec.name, counts)
    return counts


def ensure_campaign(sessions, *, campaign: str, campaign_file: str | None, db: str | None) -> None:
    """Import `campaign_file` (the campaign and its prompts) when the store has no campaign named `campaign`."""
    with sessions() as session:
        try:
            campaign_by_name(session=session, name=campaign)
            return
        except CampaignError:
            if not campaign_file:
                raise
    defined = load_campaign(campaign_file).name
    if defined != campaign:
        raise CampaignError(f"{campaign_file}: defines campaign '{defined}', not '{campaign}' (the `campaign` key)")
    counts = import_campaign(campaign_file, db=db)
    logger.info("Imported campaign '%s': %d prompts", campaign, counts["prompts"])


def store_row(session, campaign, row: ImportRow) -> dict[int, dict]:
    """Store one row's prompt and candidates; returns {prompt id: gold answer} when the row is gold."""
    prompt = add_prompt(session=session, campaign=campaign, external_id=row.prompt_id, messages=row.messages)
    candidate_ids = []
    for policy_name, completion, settings in row.candidates:
        policy = ensure_policy(session=session, campaign=campaign, name=policy_name)
        samples = sum(1 for name, *_ in row.candidates[: len(candidate_ids)] if name == policy_name)
        candidate = add_candidate(
            session=session,
            prompt=prompt,
            policy=policy,
            completion=completion,
            settings={"source": "import", **settings},
            sample_index=samples,
        )
        candidate_ids.append(candidate.id)
    if row.gold_ranks is None:
        return {}
    return {prompt.id: {"candidate_ranks": {str(cid): rank for cid, rank in zip(candidate_ids, row.gold_ranks)}}}


def read_source(source: str, split: str) -> list[dict]:
    """The source's records as dicts; a JSON array file (Label Studio's export) is read as it is."""
    path = Path(source).expanduser()
    if path.suffix == ".json" and path.is_file():
        try:
            records = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise DataError(f"{source}: not valid JSON ({error.msg}, line {error.lineno})") from None
        if isinstance(records, list):
            return records
    return list(load_records(source, split))


def read_rows(dataset, *, source: str) -> list[ImportRow]:
    """Check every row; the first bad one is a `DataError` naming the source, the row and the field."""
    rows = []
    for index, record in enumerate(dataset):
        try:
            rows.append(parse_row(record))
        except DataError as error:
            raise DataError(f"{source}: row {index}: {error}") from None
    if not rows:
        raise DataError(f"{source}: no rows")
    return rows


def parse_row(record: dict) -> ImportRow:
    """One `ImportRow` from a dataset row; `DataError` (naming the field) when it breaks the format."""
    messages = _prompt_messages(record)
    prompt_id = record.get("prompt_id")
    if prompt_id is None:  # a content hash, so importing the same file twice is caught as a duplicate
        prompt_id = hashlib.sha1(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:16]
    candidates = [_candidate(entry, i) for i, entry in enumerate(record.get("candidates") or [])]
    gold = record.get("gold")
    gold_ranks = None
    if gold is not None:
        gold_ranks = gold.get("ranks") if isinstance(gold, dict) else None
        if not isinstance(gold_ranks, list) or len(gold_ranks) != len(candidates) or len(candidates) < 2:
            raise DataError(
                f"field 'gold': expected {{\"ranks\": [...]}} with one rank per candidate (at least 2), got {gold!r}"
            )
    return ImportRow(prompt_id=str(prompt_id), messages=messages, candidates=candidates, gold_ranks=gold_ranks)


def _prompt_messages(record: dict) -> list:
    if record.get("prompt") is None and isinstance(record.get("messages"), list):
        turns = record["messages"]
        prompt = turns[:-1] if turns and isinstance(turns[-1], dict) and turns[-1].get("role") == "assistant" else turns
    else:
        prompt = record.get("prompt")
    if prompt is None:
        raise DataError("field 'prompt': missing (give `prompt`, or a `messages` conversation)")
    problem = message_problem(prompt)
    if problem:
        raise DataError(f"field 'prompt': {problem}")
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt


def _candidate(entry, index: int) -> tuple[str, list, dict]:
    if not isinstance(entry, dict) or not isinstance(entry.get("policy"), str) or "completion" not in entry:
        raise DataError(
            f'field \'candidates\': entry {index} must be {{"policy": NAME, "completion": ...}}, got {entry!r}'[:200]
        )
    completion = entry["completion"]
    problem = message_problem(completion)
    if problem:
        raise DataError(f"field 'candidates': entry {index} completion: {problem}")
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    settings = {}
    if entry.get("oracle_score") is not None:
        score = entry["oracle_score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise DataError(f"field 'candidates': entry {index} oracle_score must be a number, got {score!r}")
        settings["oracle_score"] = float(score)
    return entry["policy"], completion, settings
