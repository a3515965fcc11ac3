"""Argilla preference datasets, 1.x and 2.x, as rows with one judgment per user's submitted answer.

Layouts read (the shapes Argilla's own export code writes):
- 1.x FeedbackDataset, `format_as("datasets")` / `push_to_huggingface` (Argilla 1.13-1.29,
  `client/feedback/integrations/huggingface/dataset.py`): a text column per field, a column per
  question holding [{user_id, value, status}] (empty until answered), `QUESTION-suggestion`,
  `QUESTION-suggestion-metadata`, `external_id`, `metadata` (a JSON string).
- 2.x `dataset.records.to_datasets()` / `to_hub` / `to_list(flatten=True)` (Argilla 2.x,
  `records/_io/_generic.py`): fields and metadata as columns, `QUESTION.responses` (one value per
  user), `QUESTION.responses.users`, `QUESTION.responses.status`, `QUESTION.suggestion`; and the
  nested `to_list()` / `to_json` records ({id, fields, responses: {QUESTION: [{value, user_id}]}}).

Answers: a RankingQuestion (1.x [{rank, value}], ties allowed; 2.x the values best first) ranks
the response fields it names; RatingQuestions named after a response field (`response-1-rating`,
as distilabel's PreferenceToArgilla makes them) rate that response, and a rating of a record with
one response rates it; a LabelQuestion whose answer is a response field picks it as the best.
With several such questions, a user's first ranking counts, else their ratings, else their pick;
`label_field` chooses the question. The candidates are the fields the answers and suggestions name
anywhere in the file, or else every text field but the prompt, so a record nobody has answered yet
still gets them. Users become raters `argilla:USER_ID`; draft and discarded answers are left out.
"""

import re
from dataclasses import dataclass, field

from collect.domain.foreign.common import (
    PROMPT_KEYS,
    Conversion,
    find_prompt_key,
    is_number,
    order_ranks,
    rater_name,
)
from plumb.data import DataError

TOOL = "argilla"
V1_RESERVED = {"external_id", "metadata", "id", "vectors"}
V2_RESERVED = {"id", "_server_id", "status", "score", "external_id"}
SUGGESTION_SUFFIXES = ("-suggestion", "-suggestion-metadata")  # 1.x columns beside each question
COUNTED = (None, "submitted")  # 2.x exports before 2.2 carry no status: only submitted answers are exported


@dataclass
class Answer:
    """One user's answer to one question of a record."""

    question: str
    user: str
    status: str | None
    value: object


@dataclass
class Record:
    """A record in any layout: its id, its text fields, its answers and its suggestions' values."""

    id: object
    fields: dict
    answers: list[Answer] = field(default_factory=list)
    suggestions: list = field(default_factory=list)


def is_argilla(records: list[dict]) -> bool:
    """Whether the records carry Argilla's question columns (1.x or 2.x) or its nested record layout."""
    keys = {key for record in records for key in record}
    return (
        any(key.endswith((".responses", ".responses.users", ".suggestion", "-suggestion-metadata")) for key in keys)
        or "_server_id" in keys
        or (isinstance(records[0].get("fields"), dict) and "responses" in keys)
        or any(_is_v1_answers(value) for record in records for value in record.values())
    )


def convert(records: list[dict], *, source: str, label_field: str | None = None) -> Conversion:
    """Every record as a row: the prompt field, the response fields as candidates, a judgment per user."""
    questions = _questions(records)
    if label_field is not None and label_field not in questions:
        raise DataError(f"{source}: no question '{label_field}' (questions: {', '.join(questions) or 'none'})")
    normalized = [_normalize(record, _layout(records), questions) for record in records]
    fields = list(dict.fromkeys(name for record in normalized for name in record.fields))
    named = _named_fields(normalized, fields, source)
    prompt = find_prompt_key(dict.fromkeys(fields, ""), exclude=named)
    rest = [name for name in fields if name not in named and name != prompt]
    if prompt is None and len(rest) == 1 and named:
        prompt = rest[0]
    if prompt is None:
        raise DataError(f"{source}: no prompt field among the record fields {fields}")
    candidates = [name for name in fields if name in named] or [name for name in fields if name != prompt]
    out = Conversion(TOOL)
    for index, record in enumerate(normalized):
        row = _row(record, index, prompt, candidates, label_field, out)
        if row is not None:
            out.add(row)
    return out


def _row(record: Record, index: int, prompt: str, candidates: list[str], label_field, out: Conversion) -> dict | None:
    """The record's row; an optional (2.x) field left empty drops that response, an empty prompt the record."""
    if not record.fields.get(prompt):
        out.left_out["record with an empty prompt"] += 1
        return None
    present = [n for n, name in enumerate(candidates) if record.fields.get(name)]
    out.left_out["empty response field"] += len(candidates) - len(present)
    judgments = []
    for judgment in _judgments(record, candidates, label_field, out):
        kind = "ranks" if "ranks" in judgment else "ratings"
        judgments.append({**judgment, kind: [judgment[kind][n] for n in present]})
    return {
        "prompt_id": f"{TOOL}-{record.id if record.id not in (None, '') else index}",
        "prompt": record.fields[prompt],
        "candidates": [
            {"policy": f"{TOOL}:{candidates[n]}", "completion": record.fields[candidates[n]]} for n in present
        ],
        "judgments": judgments,
    }


def _layout(records: list[dict]) -> str:
    if isinstance(records[0].get("fields"), dict):
        return "nested"
    keys = {key for record in records for key in record}
    return "2.x" if "_server_id" in keys or any("." in key for key in keys) else "1.x"


def _questions(records: list[dict]) -> list[str]:
    keys = list(dict.fromkeys(key for record in records for key in record))
    found = [key[: -len(".responses")] for key in keys if key.endswith(".responses")]
    found += [key[: -len(".suggestion")] for key in keys if key.endswith(".suggestion")]
    found += [key[: -len("-suggestion")] for key in keys if key.endswith("-suggestion")]
    found += [key for key in keys if any(_is_v1_answers(record.get(key)) for record in records)]
    found += [
        q for r in records for part in ("responses", "suggestions") if isinstance(r.get(part), dict) for q in r[part]
    ]
    return list(dict.fromkeys(found))


def _normalize(record: dict, layout: str, questions: list[str]) -> Record:
    if layout == "nested":
        answers = [
            Answer(question, str(entry.get("user_id")), entry.get("status"), entry.get("value"))
            for question, entries in (record.get("responses") or {}).items()
            for entry in entries or []
        ]
        suggestions = [entry.get("value") for entry in (record.get("suggestions") or {}).values() if entry]
        texts = {k: v for k, v in record["fields"].items() if isinstance(v, str)}
        return Record(record.get("id"), texts, answers, suggestions)
    if layout == "2.x":
        answers = []
        for question in questions:
            values = record.get(f"{question}.responses") or []
            users = record.get(f"{question}.responses.users") or []
            statuses = record.get(f"{question}.responses.status") or [None] * len(values)
            answers += [Answer(question, str(u), s, v) for v, u, s in zip(values, users, statuses)]
        suggestions = [record.get(f"{question}.suggestion") for question in questions]
        texts = {k: v for k, v in record.items() if isinstance(v, str) and "." not in k and k not in V2_RESERVED}
        return Record(record.get("id"), texts, answers, suggestions)
    answers = [
        Answer(question, str(entry.get("user_id")), entry.get("status"), entry.get("value"))
        for question in questions
        for entry in record.get(question) or []
        if isinstance(entry, dict)
    ]
    suggestions = [record.get(f"{question}-suggestion") for question in questions]
    texts = {
        k: v
        for k, v in record.items()
        if isinstance(v, str) and k not in questions and k not in V1_RESERVED and not k.endswith(SUGGESTION_SUFFIXES)
    }
    return Record(record.get("external_id") or record.get("id"), texts, answers, suggestions)


def _named_fields(records: list[Record], fields: list[str], source: str) -> set[str]:
    """The fields that answers or suggestions anywhere in the file rank, pick or rate: the responses."""
    named = set()
    for index, record in enumerate(records):
        for answer in record.answers:
            order = _ranking(answer.value)
            if order is not None:
                known = [name for name in order if name in fields]
                if known and len(known) < len(order) or (order and not known and _is_v1_ranking(answer.value)):
                    unknown = next(name for name in order if name not in fields)
                    raise DataError(
                        f"{source}: row {index}: question '{answer.question}' ranks {unknown!r}, "
                        f"which is not a field of the record (fields: {', '.join(fields)})"
                    )
                named.update(known)
            elif isinstance(answer.value, str) and answer.value in fields:
                named.add(answer.value)
            elif is_number(answer.value):  # a rating names its response; a prompt field is no response
                rated = _rated_field(answer.question, [f for f in fields if f not in PROMPT_KEYS], None)
                named.update([rated] if rated else [])
        for value in record.suggestions:
            named.update(name for name in _ranking(value) or () if name in fields)
    return named


def _judgments(record: Record, candidates: list[str], label_field, out: Conversion) -> list[dict]:
    by_user: dict[str, list[Answer]] = {}
    for answer in record.answers:
        if label_field is not None and answer.question != label_field:
            continue
        if answer.status not in COUNTED:
            out.left_out[f"{answer.status} answer (not submitted)"] += 1
            continue
        by_user.setdefault(answer.user, []).append(answer)
    judgments = []
    for user, answers in by_user.items():
        found = _user_judgment(answers, candidates)
        if found is None:
            out.left_out["answers that compare no responses"] += 1
            continue
        judgment, used = found
        out.left_out["another comparing question of the same user (choose one with --label-field)"] += used - 1
        judgments.append({"rater": rater_name(TOOL, user), **judgment})
    return judgments


def _user_judgment(answers: list[Answer], candidates: list[str]) -> tuple[dict, int] | None:
    """A user's judgment (their first ranking, else their ratings, else their pick) and how many questions compared."""
    rankings = [a for a in answers if _ranking(a.value) and set(_ranking(a.value)) <= set(candidates)]
    ratings = {}
    for answer in answers:
        name = _rated_field(answer.question, candidates, len(candidates)) if is_number(answer.value) else None
        if name is not None:
            ratings.setdefault(name, answer.value)
    picks = [a for a in answers if isinstance(a.value, str) and a.value in candidates]
    used = len(rankings) + bool(ratings) + len(picks)
    if rankings:
        return {"ranks": _ranks(rankings[0].value, candidates)}, used
    if ratings:
        return {"ratings": [ratings.get(name) for name in candidates]}, used
    if picks:
        return {"ranks": [1 if name == picks[0].value else 2 for name in candidates]}, used
    return None


def _ranking(value) -> list[str] | None:
    """The names a ranking answer orders (1.x [{rank, value}] or 2.x [names, best first]), else None."""
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(item, dict) and isinstance(item.get("value"), str) for item in value):
        return [item["value"] for item in value]
    if all(isinstance(item, str) for item in value):
        return list(value)
    return None


def _ranks(value: list, candidates: list[str]) -> list[int | None]:
    if isinstance(value[0], dict):  # 1.x: ranks as given (ties share one); an unranked option has none
        given = {item["value"]: item.get("rank") for item in value}
        return [given.get(name) if type(given.get(name)) is int else None for name in candidates]
    return order_ranks(list(value), candidates)


def _rated_field(question: str, fields: list[str], sole: int | None) -> str | None:
    """The response field a rating question rates: the longest field name in the question's name, or the one response
    of a record that has one."""
    matches = [name for name in fields if re.search(rf"(^|[-_. ]){re.escape(name)}($|[-_. ])", question)]
    if matches:
        return max(matches, key=len)
    return fields[0] if sole == 1 else None


def _is_v1_answers(value) -> bool:
    return (
        isinstance(value, list) and bool(value) and isinstance(value[0], dict) and {"user_id", "value"} <= set(value[0])
    )


def _is_v1_ranking(value) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict) and "rank" in value[0]
