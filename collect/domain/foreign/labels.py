"""Imported judgments: their shape in an import row, and the answer each gives a task of the campaign's kind.

A row's `judgments` are over the row's own candidates, in row order:

    {"rater": NAME, "ranks": [1, 2]}                     1 = best, ties share a rank, null = not ranked
    {"rater": NAME, "ranks": [1, 1], "both_bad": true}   two answers judged both bad
    {"rater": NAME, "ratings": [4, 2], "scale": [1, 5]}  one rating per candidate (null = none) on the source's scale
    optional "seconds": the time the annotator spent.

A choice between two answers is a ranking of two. On the campaign's kind of task:
- pairwise (candidates a, b): preference +2 or -2 ("A better": the source says which answer is better,
  not by how much, as an arena vote does), 0 for a tie, or both_bad; from ratings, the sign of their
  difference; a pair that was not ranked against each other gets no answer.
- ranking: the ranks, made dense; from ratings, ranks by rating; a partial ranking is left out.
- rating: the ratings, shifted from the source's scale (when it gives one) onto 1..rating_points;
  a ranking or a choice cannot become a rating.
"""

import math
from dataclasses import dataclass

from collect.domain.foreign.common import dense_ranks, is_number
from plumb.data import DataError

SECONDS_MAX = 7 * 24 * 3600.0  # the store's limit on a judgment's time spent
STRENGTH = 2  # "A better": an imported choice says which answer is better, not by how much


@dataclass(frozen=True)
class RowJudgment:
    """One annotator's judgment of a row's candidates, in row order: ranks or ratings."""

    rater: str
    ranks: tuple | None = None
    ratings: tuple | None = None
    scale: tuple | None = None
    both_bad: bool = False
    seconds: float | None = None


def parse_judgments(value, candidates: int) -> list[RowJudgment]:
    """The row's `judgments` field checked against its number of candidates; `DataError` naming the entry."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise DataError(f"field 'judgments': expected a list, got {type(value).__name__}")
    return [_parse_one(entry, index, candidates) for index, entry in enumerate(value)]


def _parse_one(entry, index: int, candidates: int) -> RowJudgment:
    where = f"field 'judgments': entry {index}"
    if not isinstance(entry, dict) or not isinstance(entry.get("rater"), str) or not entry["rater"].strip():
        raise DataError(f"{where}: needs a 'rater' name, got {entry!r}"[:200])
    ranks, ratings = entry.get("ranks"), entry.get("ratings")
    if (ranks is None) == (ratings is None):
        raise DataError(f"{where}: give 'ranks' or 'ratings', one per candidate")
    values = ranks if ranks is not None else ratings
    if not isinstance(values, list) or len(values) != candidates:
        raise DataError(f"{where}: expected {candidates} values, one per candidate, got {values!r}"[:200])
    if ranks is not None and not all(r is None or (type(r) is int and r >= 1) for r in ranks):
        raise DataError(f"{where}: ranks are integers from 1 (best) or null, got {ranks!r}"[:200])
    if ratings is not None and not all(r is None or (is_number(r) and math.isfinite(r)) for r in ratings):
        raise DataError(f"{where}: ratings are numbers or null, got {ratings!r}"[:200])
    scale = entry.get("scale")
    if scale is not None and not (
        isinstance(scale, list) and len(scale) == 2 and all(is_number(s) for s in scale) and scale[0] < scale[1]
    ):
        raise DataError(f"{where}: scale must be [lowest, highest], got {scale!r}"[:200])
    seconds = entry.get("seconds")
    if seconds is not None and not (is_number(seconds) and 0 <= seconds <= SECONDS_MAX):
        raise DataError(f"{where}: seconds must be a number from 0 to a week, got {seconds!r}")
    return RowJudgment(
        rater=entry["rater"],
        ranks=tuple(ranks) if ranks is not None else None,
        ratings=tuple(ratings) if ratings is not None else None,
        scale=tuple(scale) if scale is not None else None,
        both_bad=bool(entry.get("both_bad")),
        seconds=seconds,
    )


def kind_problem(judgment: RowJudgment, kind: str, rating_points: int) -> str | None:
    """Why this judgment can never be an answer of the campaign's kind of task, or None when it can."""
    if kind != "rating":
        return None
    if judgment.ratings is None:
        return "ranks or chooses between the candidates, and a rating campaign takes ratings"
    values = [r for r in judgment.ratings if r is not None]
    if judgment.scale is not None:
        low, high = judgment.scale
        points = high - low + 1
        if points != rating_points:
            return (
                f"rates on a {low:g}..{high:g} scale ({points:g} points); the campaign rates 1..{rating_points}: "
                f"set `rating_points: {points:g}` in its YAML"
            )
        values = [r - low + 1 for r in values]
    if any(r != int(r) for r in values):
        return f"has ratings that are not whole points ({', '.join(f'{r:g}' for r in values)}): choose a rating field"
    if any(not 1 <= r <= rating_points for r in values):
        return f"has ratings outside the campaign's 1..{rating_points}"
    return None


def task_answer(judgment: RowJudgment, positions: list[int], kind: str) -> dict | str:
    """The answer `judgment` gives a task of `kind` whose candidates are the row's candidates at `positions`
    (in the task's canonical order), or why it gives none."""
    ranks = [judgment.ranks[p] for p in positions] if judgment.ranks is not None else None
    ratings = [judgment.ratings[p] for p in positions] if judgment.ratings is not None else None
    if kind == "pairwise":
        return _pairwise(judgment, ranks, ratings)
    if kind == "ranking":
        if ranks is not None:
            if None in ranks:
                return "ranks only some of the candidates (a ranking task needs all)"
            return {"ranks": dense_ranks(ranks, higher_is_better=False)}
        if None in ratings:
            return "rates only some of the candidates (a ranking task needs all)"
        return {"ranks": dense_ranks(ratings, higher_is_better=True)}
    if None in ratings:
        return "rates only some of the candidates (a rating task needs all)"
    low = judgment.scale[0] if judgment.scale is not None else 1
    return {"ratings": [int(r - low + 1) for r in ratings]}


def _pairwise(judgment: RowJudgment, ranks, ratings) -> dict | str:
    if ranks is not None:
        if None in ranks:
            return "the two candidates were not ranked against each other"
        if judgment.both_bad:
            return {"both_bad": True}
        return {"preference": STRENGTH * ((ranks[0] < ranks[1]) - (ranks[0] > ranks[1]))}
    if None in ratings:
        return "one of the two candidates has no rating"
    return {"preference": STRENGTH * ((ratings[0] > ratings[1]) - (ratings[0] < ratings[1]))}
