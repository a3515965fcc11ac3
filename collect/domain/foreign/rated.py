"""Rated completions, UltraFeedback and HelpSteer: each prompt's responses with one rating per response.

- ultrafeedback: the Hub's `openbmb/UltraFeedback` (the repository README's "Dataset Format", with
  the Hub's `fine-grained_score` and `overall_score`): {instruction, completions: [{model, response,
  annotations: {instruction_following | honesty | truthfulness | helpfulness: {Rating: "1".."5" or
  "N/A", ...}}, fine-grained_score (their mean), overall_score (1..10)}]}. The rating read is
  `fine-grained_score` (what UltraRM trained on), or the aspect or score `label_field` names.
  Policies are the completions' models; the ratings are GPT-4's, one rater `ultrafeedback:FILE`.
- helpsteer: `nvidia/HelpSteer` and `nvidia/HelpSteer2` (train.jsonl.gz): one response per row,
  {prompt, response, helpfulness, correctness, coherence, complexity, verbosity}, each 0..4. Rows
  with the same prompt become one prompt with several candidates; the rating read is
  `helpfulness`, or the attribute `label_field` names; one rater `helpsteer:FILE`.
"""

from collect.domain.foreign.common import (
    Conversion,
    checked_messages,
    content_id,
    is_number,
    rater_name,
    source_name,
)
from plumb.data import DataError

ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
SCORES = {"fine-grained_score": (1, 5), "overall_score": (1, 10), **{aspect: (1, 5) for aspect in ASPECTS}}
ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
HELPSTEER_SCALE = (0, 4)


def is_ultrafeedback(records: list[dict]) -> bool:
    """Whether the records are UltraFeedback's: an instruction and annotated completions."""
    first = records[0] if records else {}
    completions = first.get("completions")
    return (
        "instruction" in first
        and isinstance(completions, list)
        and any(isinstance(c, dict) and ("annotations" in c or "fine-grained_score" in c) for c in completions)
    )


def is_helpsteer(records: list[dict]) -> bool:
    """Whether the records are HelpSteer's: prompt, response and the helpfulness attributes."""
    return {"prompt", "response", "helpfulness"} <= set(records[0] if records else {})


def convert_ultrafeedback(records: list[dict], *, source: str, label_field: str | None = None) -> Conversion:
    """Every instruction as a row: its completions as candidates, their ratings as one judgment."""
    label = label_field or "fine-grained_score"
    if label not in SCORES:
        raise DataError(f"{source}: UltraFeedback has no rating '{label}' (choose one of {', '.join(SCORES)})")
    out = Conversion("ultrafeedback")
    rater, seen = rater_name("ultrafeedback", source_name(source)), set()
    for index, record in enumerate(records):
        where = f"{source}: row {index}"
        prompt = checked_messages(record.get("instruction"), where, "instruction")
        completions = record.get("completions") or []
        candidates, ratings = [], []
        for n, completion in enumerate(completions):
            at = f"{where}: field 'completions[{n}]"
            if not isinstance(completion, dict) or not isinstance(completion.get("response"), str):
                raise DataError(f"{at}.response': expected the completion's text")
            candidates.append(
                {"policy": str(completion.get("model") or "unknown"), "completion": completion["response"]}
            )
            ratings.append(_ultrafeedback_rating(completion, label, at))
        prompt_id = content_id("ultrafeedback", prompt, [c["completion"] for c in candidates])
        if prompt_id in seen:
            out.left_out["duplicate row"] += 1
            continue
        seen.add(prompt_id)
        judged = any(r is not None for r in ratings)
        judgment = {"rater": rater, "ratings": ratings, "scale": list(SCORES[label])}
        out.add({"prompt_id": prompt_id, "prompt": prompt, "candidates": candidates, "judgments": [judgment] * judged})
    return out


def _ultrafeedback_rating(completion: dict, label: str, at: str) -> float | None:
    if label in ASPECTS:
        annotation = (completion.get("annotations") or {}).get(label)
        if isinstance(annotation, list):  # early copies of the dataset hold a list of one annotation
            annotation = annotation[0] if annotation else None
        value = annotation.get("Rating") if isinstance(annotation, dict) else None
    else:
        value = completion.get(label)
        if value is None and label == "fine-grained_score":  # the mean of the aspects' ratings, as the Hub's is
            aspects = [_ultrafeedback_rating(completion, aspect, at) for aspect in ASPECTS]
            known = [a for a in aspects if a is not None]
            value = sum(known) / len(known) if known else None
    if value is None or value == "N/A":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{at}.{label}': expected a rating, got {value!r}") from None
    return int(number) if number == int(number) else number


def convert_helpsteer(records: list[dict], *, source: str, label_field: str | None = None) -> Conversion:
    """Every prompt as a row: its rows' responses as candidates, their ratings of one attribute as one judgment."""
    label = label_field or "helpfulness"
    if label not in ATTRIBUTES:
        raise DataError(f"{source}: HelpSteer has no attribute '{label}' (choose one of {', '.join(ATTRIBUTES)})")
    groups: dict[str, list[tuple[int, dict]]] = {}
    for index, record in enumerate(records):
        prompt = checked_messages(record.get("prompt"), f"{source}: row {index}", "prompt")
        groups.setdefault(content_id("helpsteer", prompt), []).append((index, record))
    out = Conversion("helpsteer")
    rater = rater_name("helpsteer", source_name(source))
    for prompt_id, group in groups.items():
        candidates, ratings = [], []
        for index, record in group:
            where = f"{source}: row {index}"
            response = checked_messages(record.get("response"), where, "response")
            rating = record.get(label)
            if rating is not None and not (is_number(rating) and HELPSTEER_SCALE[0] <= rating <= HELPSTEER_SCALE[1]):
                raise DataError(f"{where}: field '{label}': expected a rating from 0 to 4, got {rating!r}")
            candidates.append({"policy": "helpsteer", "completion": response})
            ratings.append(rating)
        judged = any(r is not None for r in ratings)
        judgment = {"rater": rater, "ratings": ratings, "scale": list(HELPSTEER_SCALE)}
        row = {"prompt_id": prompt_id, "prompt": group[0][1]["prompt"], "candidates": candidates}
        out.add({**row, "judgments": [judgment] * judged})
    return out
