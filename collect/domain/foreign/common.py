"""What every source's reader shares: the conversion it returns, rater names, prompt fields, rank helpers."""

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePath

from plumb.data import DataError, message_problem

PROMPT_KEYS = ("prompt", "instruction", "question", "request", "input", "text")
RATER_NAME_MAX = 200  # the raters table's name column


@dataclass
class Conversion:
    """A source read as import rows, with what it held: its annotations, its unannotated records, what was left out."""

    format: str
    rows: list[dict] = field(default_factory=list)
    annotations: int = 0  # the source's annotations that became row judgments
    unannotated: int = 0  # records imported as prompts and candidates only: nobody had judged them
    left_out: Counter = field(default_factory=Counter)  # reason -> how many (annotations, replies, rows)
    counts: dict = field(default_factory=dict)  # the source's own units, e.g. OpenAssistant trees

    def add(self, row: dict) -> None:
        """Append a row, counting its judgments as annotations, or the row as unannotated when it has none."""
        self.rows.append(row)
        if row.get("judgments"):
            self.annotations += len(row["judgments"])
        else:
            self.unannotated += 1


def rater_name(tool: str, user) -> str:
    """The imported rater standing for one user of a source: `tool:user` (the raters table holds 200 characters)."""
    return f"{tool}:{user}"[:RATER_NAME_MAX]


def source_name(source: str) -> str:
    """A file's name, standing for the unnamed annotators of a source that records no user ids."""
    return PurePath(source).name or source


def prompt_key(fields: dict, where: str, *, exclude=()) -> str:
    """The field holding the prompt (the first of PROMPT_KEYS with text); `DataError` naming what is there."""
    found = find_prompt_key(fields, exclude=exclude)
    if found is None:
        raise DataError(f"{where}: no prompt field (looked for {', '.join(PROMPT_KEYS)}; has {', '.join(fields)})")
    return found


def find_prompt_key(fields: dict, *, exclude=()) -> str | None:
    """The first of PROMPT_KEYS that holds text in `fields` (and is not excluded), or None."""
    return next((key for key in PROMPT_KEYS if key not in exclude and isinstance(fields.get(key), str)), None)


def checked_messages(value, where: str, field_name: str):
    """`value` when it is text or a message list, else a `DataError` naming the field."""
    problem = message_problem(value)
    if problem:
        raise DataError(f"{where}: field '{field_name}': {problem}")
    return value


def plain_messages(messages: list) -> list[dict]:
    """Messages reduced to role and content, so two sides compare equal when they say the same."""
    return [{"role": m.get("role"), "content": m.get("content")} if isinstance(m, dict) else m for m in messages]


def order_ranks(order: list, names: list) -> list[int | None]:
    """Ranks (1 = first) of `names` from a best-first `order` of them; a name not in the order is unranked (None)."""
    position = {name: rank for rank, name in enumerate(order, start=1)}
    return [position.get(name) for name in names]


def dense_ranks(values: list, *, higher_is_better: bool) -> list[int]:
    """Dense ranks of `values` (1 = best, equal values share a rank)."""
    levels = sorted(set(values), reverse=higher_is_better)
    return [levels.index(value) + 1 for value in values]


def is_number(value) -> bool:
    """Whether `value` is a real number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def content_id(prefix: str, *parts) -> str:
    """A prompt id from a row's content, for sources without ids: the same row twice gets the same id."""
    digest = hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{prefix}-{digest}"
