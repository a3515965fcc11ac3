"""Reading an import's source and checking its rows: the records as dicts, each row as an `ImportRow`.

A bad row is a `DataError` naming the source, the row and the field; nothing is stored before
every row has passed.
"""

import gzip
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from collect.domain.foreign.labels import parse_judgments
from plumb.data import DataError, load_records, message_problem, read_numbered_jsonl


@dataclass
class ImportRow:
    """One checked input row: a prompt, its candidates as (policy, completion, settings), its gold ranks if any,
    and the judgments of its candidates (`collect.domain.foreign.labels.RowJudgment`)."""

    prompt_id: str
    messages: list
    candidates: list[tuple[str, list, dict]] = field(default_factory=list)
    gold_ranks: list[int] | None = None
    judgments: list = field(default_factory=list)
    number: int | None = None  # the row's number in the source, which errors and the hygiene report name


def read_source(source: str, split: str) -> list[dict]:
    """The source's records as dicts: a JSON array file (Label Studio's export, an arena log) as it is, JSON Lines
    as they are (gzip too), anything else through `load_records`."""
    path = Path(source).expanduser()
    if path.name.endswith((".json", ".json.gz")) and path.is_file():
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8") as handle:
                records = json.load(handle)
        except json.JSONDecodeError as error:
            raise DataError(f"{source}: not valid JSON ({error.msg}, line {error.lineno})") from None
        if isinstance(records, list):
            return records
    if path.name.endswith((".jsonl", ".jsonl.gz")) and path.is_file():
        return read_numbered_jsonl(path)[0]  # plain dicts: Arrow would merge nested records' keys
    return [dict(record) for record in load_records(source, split)]


def read_rows(dataset, *, source: str) -> list[ImportRow]:
    """Check every row; the first bad one is a `DataError` naming the source, the row and the field."""
    rows = []
    for index, record in enumerate(dataset):
        try:
            row = parse_row(record)
        except DataError as error:
            raise DataError(f"{source}: row {index}: {error}") from None
        row.number = index
        rows.append(row)
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
    judgments = parse_judgments(record.get("judgments"), len(candidates))
    return ImportRow(
        prompt_id=str(prompt_id), messages=messages, candidates=candidates, gold_ranks=gold_ranks, judgments=judgments
    )


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
    settings = entry.get("settings") or {}  # how it was made, as `plumb collect generate --to` writes it
    if not isinstance(settings, dict):
        raise DataError(f"field 'candidates': entry {index} settings must be an object, got {settings!r}"[:200])
    settings = dict(settings)
    if entry.get("oracle_score") is not None:
        score = entry["oracle_score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise DataError(f"field 'candidates': entry {index} oracle_score must be a number, got {score!r}")
        settings["oracle_score"] = float(score)
    return entry["policy"], completion, settings
