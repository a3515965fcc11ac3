"""The limits on what a rater sends, one set for every entry point: the page's events, REST, and the store itself.

The store checks them on every write (`record_judgment`), so no entry point can store more;
the REST schemas and the page's text boxes repeat the same numbers so that a client hears
of a limit before it sends, and the OpenAPI spec states them.
"""

import math

from collect.store.models import StoreError

RATIONALE_MAX_CHARS = 10_000
EDIT_MAX_CHARS = 50_000
FLAGS_MAX = 20  # a flag is one of the campaign's own few labels; more than this is not an answer
SECONDS_SPENT_MAX = 7 * 24 * 3600.0  # a week: longer is a clock error, not time spent on one task
# A judgment's JSON body, with every character escaped as \uXXXX, stays far below this.
BODY_MAX_BYTES = 1_000_000


class LimitError(StoreError):
    """What a rater sent is over a limit or not storable text; the message names the field and the limit."""


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as it is (a NUL byte, a lone UTF-16 surrogate), or None when it can."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate (not valid Unicode)"
    return None


def is_storable(text: str) -> bool:
    """Whether `text` can be stored and looked up on both databases (no NUL, no lone surrogate)."""
    return text_problem(text) is None


def check_text(text: str | None, *, field: str, max_chars: int) -> None:
    """`LimitError` unless `text` (None passes) is storable and at most `max_chars` characters."""
    if text is None:
        return
    if not isinstance(text, str):
        raise LimitError(f"{field} must be text, got {type(text).__name__}")
    if len(text) > max_chars:
        raise LimitError(f"{field} is {len(text):,} characters; the limit is {max_chars:,}")
    problem = text_problem(text)
    if problem:
        raise LimitError(f"{field} {problem}")


def check_judgment_limits(*, rationale: str, edit: str | None, flags: list, seconds_spent) -> None:
    """`LimitError` for the first of a judgment's free-form fields that is over its limit or not storable."""
    check_text(rationale, field="rationale", max_chars=RATIONALE_MAX_CHARS)
    check_text(edit, field="edit", max_chars=EDIT_MAX_CHARS)
    if not isinstance(flags, list) or len(flags) > FLAGS_MAX:
        raise LimitError(f"flags must be a list of at most {FLAGS_MAX} labels")
    if len(set(flags)) != len(flags):
        raise LimitError("flags must not repeat a label")
    for flag in flags:
        check_text(flag, field="a flag", max_chars=200)
    if seconds_spent is not None and not (
        isinstance(seconds_spent, int | float) and math.isfinite(seconds_spent) and 0 <= seconds_spent
    ):
        raise LimitError(f"seconds_spent must be a finite number of seconds, at least 0, got {seconds_spent!r}")
    if seconds_spent is not None and seconds_spent > SECONDS_SPENT_MAX:
        raise LimitError(f"seconds_spent is over a week ({seconds_spent:g} s); the limit is {SECONDS_SPENT_MAX:g}")
