"""Read other tools' preference-project exports as Plumb import rows, so teams can move in.

- Label Studio: the JSON export (a list of tasks, each with `data` and `annotations`) of a
  pairwise project (`<Pairwise>` over two text fields, e.g. the RLHF template's `$prompt`,
  `$answer1`, `$answer2`). Each task's prompt and its two answers become a prompt with two
  candidates.
- Argilla: a preference dataset exported to a Hugging Face dataset (`to_hub`/`to_disk`, or
  records as JSONL): a text field for the prompt and the response fields that a ranking
  question ranks. Both the 1.x layout (column QUESTION: list of {user_id, value, status})
  and the 2.x layout (columns QUESTION.responses, QUESTION.responses.users) are read.

The result is rows in `plumb collect import`'s format: prompt_id, prompt, candidates.
"""

from plumb.data import DataError

PROMPT_KEYS = ("prompt", "instruction", "question", "request", "input", "text")


def detect_format(records: list[dict]) -> str:
    """'label-studio', 'argilla' or 'plumb' (the import format itself), from the first record's keys."""
    first = records[0] if records else {}
    if isinstance(first.get("data"), dict) and ("annotations" in first or "predictions" in first):
        return "label-studio"
    if any(key.endswith(".responses") for key in first) or any(_is_argilla_v1_question(v) for v in first.values()):
        return "argilla"
    return "plumb"


def to_import_rows(records: list[dict], *, source: str) -> list[dict]:
    """Convert a foreign export's records to import rows; import-format records pass through unchanged."""
    kind = detect_format(records)
    if kind == "label-studio":
        return [label_studio_row(task, index, source=source) for index, task in enumerate(records)]
    if kind == "argilla":
        return [argilla_row(record, index, source=source) for index, record in enumerate(records)]
    return records


def _prompt_key(data: dict, where: str) -> str:
    for key in PROMPT_KEYS:
        if isinstance(data.get(key), str):
            return key
    raise DataError(f"{where}: no prompt field (looked for {', '.join(PROMPT_KEYS)}; has {', '.join(data)})")


def _candidates(data: dict, keys: list[str], tool: str, where: str) -> list[dict]:
    missing = [key for key in keys if not isinstance(data.get(key), str)]
    if missing:
        raise DataError(f"{where}: response field(s) {', '.join(missing)} missing or not text")
    return [{"policy": f"{tool}:{key}", "completion": data[key]} for key in keys]


def label_studio_row(task: dict, index: int, *, source: str) -> dict:
    """One Label Studio task as an import row: data's prompt, and the two compared fields as candidates."""
    where = f"{source}: task {task.get('id', index)} (row {index})"
    data = task.get("data") or {}
    prompt_key = _prompt_key(data, where)
    compared = _pairwise_fields(task) or [k for k in data if k != prompt_key and isinstance(data[k], str)][:2]
    if len(compared) != 2:
        raise DataError(f"{where}: expected two answers to compare, found {compared}")
    return {
        "prompt_id": f"label-studio-{task.get('id', index)}",
        "prompt": data[prompt_key],
        "candidates": _candidates(data, compared, "label-studio", where),
    }


def _pairwise_fields(task: dict) -> list[str]:
    # A <Pairwise toName="answer1,answer2"> result names the two compared fields.
    for annotation in task.get("annotations") or []:
        for result in annotation.get("result") or []:
            if result.get("type") == "pairwise":
                names = result.get("to_name")
                return names.split(",") if isinstance(names, str) else list(names or [])
    return []


def _is_argilla_v1_question(value) -> bool:
    return (
        isinstance(value, list) and bool(value) and isinstance(value[0], dict) and {"user_id", "value"} <= set(value[0])
    )


def argilla_row(record: dict, index: int, *, source: str) -> dict:
    """One Argilla record as an import row: the prompt field, and the ranked response fields as candidates."""
    where = f"{source}: row {index}"
    fields = record.get("fields") if isinstance(record.get("fields"), dict) else record
    prompt_key = _prompt_key(fields, where)
    ranked = _ranked_fields(record)
    if not ranked:  # no answers yet: the response-like text fields
        ranked = [
            key
            for key, value in fields.items()
            if isinstance(value, str) and key.startswith(("response", "reply", "generation", "answer"))
        ]
    if len(ranked) < 2:
        raise DataError(f"{where}: expected at least two response fields, found {ranked}")
    record_id = record.get("external_id") or record.get("id") or index
    return {
        "prompt_id": f"argilla-{record_id}",
        "prompt": fields[prompt_key],
        "candidates": _candidates(fields, ranked, "argilla", where),
    }


def _ranked_fields(record: dict) -> list[str]:
    """The response field names a ranking answer mentions, in first-seen order (1.x or 2.x layout)."""
    answers = []
    for key, value in record.items():
        if key.endswith(".responses") and isinstance(value, list):
            answers += value
        elif _is_argilla_v1_question(value):
            answers += [entry["value"] for entry in value]
    names = []
    for answer in answers:
        for item in answer if isinstance(answer, list) else []:
            if isinstance(item, dict) and isinstance(item.get("value"), str) and item["value"] not in names:
                names.append(item["value"])
    return names
