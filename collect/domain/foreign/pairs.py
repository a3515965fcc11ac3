"""Preference pairs (`chosen`, `rejected`, with or without `prompt`), such as hh-rlhf, as rows with their choice.

Shapes read: TRL's pairwise preference formats, explicit (`prompt`, `chosen`, `rejected`) and
implicit (the prompt inside `chosen` and `rejected`), as text or message lists, and Anthropic's
hh-rlhf (`Anthropic/hh-rlhf`, `*.jsonl.gz`: whole "\\n\\nHuman: ... \\n\\nAssistant: ..."
transcripts that differ in the last reply), split by `plumb.implicit_prompt`. Each pair is one
row, its two answers the candidates (policies `pairs:chosen` and `pairs:rejected`, the source's own
column names) and its label one judgment, the chosen answer better, by the rater `pairs:FILE`:
such files record no annotator. A pair that appears twice, or whose reply is empty, is counted out.
"""

from collect.domain.foreign.common import Conversion, checked_messages, content_id, rater_name, source_name
from plumb.data import DataError, empty_response_problem
from plumb.implicit_prompt import explicit_pair

TOOL = "pairs"


def is_pairs(records: list[dict]) -> bool:
    """Whether the records are preference pairs: chosen and rejected (and no candidates of their own)."""
    keys = set(records[0] if records else {})
    return {"chosen", "rejected"} <= keys and "candidates" not in keys


def convert(records: list[dict], *, source: str, label_field: str | None = None) -> Conversion:
    """Every pair as a row: prompt, chosen and rejected as candidates, the choice as a judgment."""
    out = Conversion(TOOL)
    rater, seen = rater_name(TOOL, source_name(source)), set()
    for index, record in enumerate(records):
        where = f"{source}: row {index}"
        for key in ("chosen", "rejected"):
            checked_messages(record.get(key), where, key)
        if record.get("prompt") is None:
            try:
                record = explicit_pair(record)
            except Exception as error:  # TRL's extract_prompt and the transcript split raise assorted errors
                raise DataError(f"{where}: field 'chosen': cannot find the prompt inside it ({error})") from None
            if not record["prompt"]:
                raise DataError(f"{where}: field 'chosen': shares no prompt with 'rejected'")
        prompt = checked_messages(record["prompt"], where, "prompt")
        chosen = checked_messages(record["chosen"], where, "chosen")
        rejected = checked_messages(record["rejected"], where, "rejected")
        if empty_response_problem(chosen) or empty_response_problem(rejected):
            out.left_out["pair with an empty reply (a few hh-rlhf transcripts end on one)"] += 1
            continue
        prompt_id = content_id(TOOL, prompt, chosen, rejected)
        if prompt_id in seen:
            out.left_out["duplicate pair"] += 1
            continue
        seen.add(prompt_id)
        out.add(
            {
                "prompt_id": prompt_id,
                "prompt": prompt,
                "candidates": [
                    {"policy": f"{TOOL}:chosen", "completion": chosen},
                    {"policy": f"{TOOL}:rejected", "completion": rejected},
                ],
                "judgments": [{"rater": rater, "ranks": [1, 2]}],
            }
        )
    return out
