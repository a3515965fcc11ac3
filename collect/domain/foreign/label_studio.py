"""Label Studio's JSON export: tasks (`data`, `annotations[].result`, `completed_by`) as rows with judgments.

Templates read (Label Studio 1.x open source: the template configs and tag docs of
HumanSignal/label-studio, and `Pairwise.js`, which writes a Pairwise result with `to_name`
equal to the control's own name):
- "Human Preference collection for RLHF": `$prompt`, `<Pairwise name="comparison"
  toName="answer1,answer2">`; result `{"type": "pairwise", "value": {"selected": "left"|"right"}}`.
- "Pairwise Classification": `<Pairwise name="pw" toName="text1,text2">` over `$text1`, `$text2`
  and no prompt: the template's header, "Select one of two items", becomes the prompt.
- "LLM Ranker": `$prompt` and a `<List value="$items">` of {id, title, body} ranked by
  `<Ranker>`; result `{"type": "ranker", "value": {"ranker": [ids, best first]}}`, or with
  buckets `{"ranker": {"bucket": [ids], ..., "_": [unsorted]}}`: buckets count best first in
  the order the export lists them, items keep their order inside a bucket, and an item left
  unsorted (in `_`, or nowhere) is unranked.

Each annotation is one judgment by rater `label-studio:USER` (`completed_by`: the user id, or
the email when the export carries the user). Cancelled (skipped) annotations and model
predictions are counted and left out; a task nobody annotated is imported without labels.
"""

from collect.domain.foreign.common import (
    Conversion,
    checked_messages,
    find_prompt_key,
    is_number,
    order_ranks,
    prompt_key,
    rater_name,
)
from collect.domain.foreign.labels import SECONDS_MAX
from plumb.data import DataError

TOOL = "label-studio"
PAIRWISE_HEADER = "Select one of two items"  # the Pairwise Classification template's header: its tasks have no prompt
ANSWER_PAIRS = (("answer1", "answer2"), ("text1", "text2"))  # the templates' own field names
SELECTED_RANKS = {"left": [1, 2], "right": [2, 1]}


def is_label_studio(records: list[dict]) -> bool:
    """Whether the records are Label Studio tasks: `data` and annotations (or predictions)."""
    first = records[0] if records else {}
    return isinstance(first.get("data"), dict) and ("annotations" in first or "predictions" in first)


def convert(records: list[dict], *, source: str, label_field: str | None = None) -> Conversion:
    """Every task as a row: its prompt, the answers it compares (or ranks) and one judgment per annotation."""
    out = Conversion(TOOL)
    for index, task in enumerate(records):
        where = f"{source}: task {task.get('id', index) if isinstance(task, dict) else index} (row {index})"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise DataError(f"{where}: field 'data': expected the task's data object")
        row = ranker_row(task, where, out) if _is_ranker(task) else pairwise_row(task, where, out)
        out.add({"prompt_id": f"{TOOL}-{task.get('id', index)}", **row})
    return out


def pairwise_row(task: dict, where: str, out: Conversion) -> dict:
    """A pairwise task: the prompt, the two compared fields as candidates, a judgment per annotation."""
    data = task["data"]
    key = find_prompt_key(data)
    if key is None and all(isinstance(data.get(k), str) for k in ("text1", "text2")):
        prompt = PAIRWISE_HEADER
    else:
        prompt = data[prompt_key(data, where)]
    compared = _compared_fields(task, data, key, where)
    candidates = [
        {"policy": f"{TOOL}:{name}", "completion": checked_messages(data[name], where, f"data.{name}")}
        for name in compared
    ]
    judgments = _judgments(task, where, out, _pairwise_answer)
    return {"prompt": prompt, "candidates": candidates, "judgments": judgments}


def _compared_fields(task: dict, data: dict, prompt_field: str | None, where: str) -> list[str]:
    # A result's to_name names the two texts only in hand-written exports: Label Studio writes the control's own name.
    for result in _results(task, "pairwise"):
        names = result.get("to_name")
        names = names.split(",") if isinstance(names, str) else list(names or [])
        if len(names) == 2 and all(isinstance(data.get(n), str) for n in names):
            return names
    for pair in ANSWER_PAIRS:
        if all(isinstance(data.get(k), str) for k in pair):
            return list(pair)
    texts = [k for k, v in data.items() if k != prompt_field and isinstance(v, str)]
    if len(texts) != 2:
        raise DataError(f"{where}: expected two answers to compare (answer1/answer2 or text1/text2), found {texts}")
    return texts


def _pairwise_answer(results: list[dict], where: str) -> dict | None:
    for result in results:
        if result.get("type") == "pairwise":
            selected = (result.get("value") or {}).get("selected")
            if selected not in SELECTED_RANKS:
                raise DataError(f"{where}: field 'value.selected': expected left or right, got {selected!r}")
            return {"ranks": SELECTED_RANKS[selected]}
    return None


def ranker_row(task: dict, where: str, out: Conversion) -> dict:
    """An LLM Ranker task: the prompt, the list's items as candidates, the ranks each annotation gives them."""
    data = task["data"]
    prompt = data[prompt_key(data, where)]
    items_key = next((k for k, v in data.items() if _is_item_list(v)), None)
    if items_key is None:
        raise DataError(f"{where}: no list of items ({{id, body}}) to rank in data")
    ids, candidates = [], []
    for n, item in enumerate(data[items_key]):
        text = item.get("body", item.get("text"))
        if not isinstance(text, str):
            raise DataError(f"{where}: field 'data.{items_key}[{n}].body': expected the item's text")
        ids.append(str(item["id"]))
        candidates.append({"policy": f"{TOOL}:{item['id']}", "completion": text})
    judgments = _judgments(task, where, out, _ranker_answer, ids)
    return {"prompt": prompt, "candidates": candidates, "judgments": judgments}


def _ranker_answer(results: list[dict], where: str, ids: list[str]) -> dict | None:
    for result in results:
        if result.get("type") != "ranker":
            continue
        ranked = (result.get("value") or {}).get("ranker")
        if isinstance(ranked, dict):  # buckets, best first; "_" holds what was left unsorted
            ranked = [item for bucket, items in ranked.items() if bucket != "_" for item in items or []]
        if not isinstance(ranked, list):
            raise DataError(f"{where}: field 'value.ranker': expected a list of item ids or buckets of them")
        ranked = [str(item) for item in ranked]
        unknown = [item for item in ranked if item not in ids]
        if unknown:
            raise DataError(f"{where}: field 'value.ranker': item {unknown[0]!r} is not one of the task's {ids}")
        return {"ranks": order_ranks(ranked, ids)} if ranked else None
    return None


def _judgments(task: dict, where: str, out: Conversion, answer_of, *extra) -> list[dict]:
    annotations = task.get("annotations") or []
    live = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
    out.left_out["cancelled annotation (skipped in Label Studio)"] += len(annotations) - len(live)
    out.left_out["model prediction (not a person's annotation)"] += len(task.get("predictions") or [])
    judgments = []
    for n, annotation in enumerate(live):
        at = f"{where}: annotation {annotation.get('id', n)}"
        answer = answer_of(annotation.get("result") or [], at, *extra)
        if answer is None:
            out.left_out["annotation without a comparison"] += 1
            continue
        judgment = {"rater": rater_name(TOOL, _user(annotation.get("completed_by"))), **answer}
        seconds = annotation.get("lead_time")
        if is_number(seconds) and 0 <= seconds <= SECONDS_MAX:  # a tab left open for weeks is no time spent
            judgment["seconds"] = float(seconds)
        judgments.append(judgment)
    return judgments


def _user(completed_by) -> str:
    # An export with annotator details carries the user ({id, email, ...}); a plain one, the id.
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or completed_by.get("id") or "unknown")
    return "unknown" if completed_by is None else str(completed_by)


def _results(task: dict, kind: str) -> list[dict]:
    return [
        result
        for source in ("annotations", "predictions")
        for annotation in task.get(source) or []
        if isinstance(annotation, dict)
        for result in annotation.get("result") or []
        if isinstance(result, dict) and result.get("type") == kind
    ]


def _is_item_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "id" in v for v in value)


def _is_ranker(task: dict) -> bool:
    return bool(_results(task, "ranker")) or any(_is_item_list(v) for v in task["data"].values())
