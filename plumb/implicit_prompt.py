"""Preference pairs whose prompt is inside `chosen` and `rejected` (TRL's "implicit prompt"), made explicit.

TRL trains on such pairs directly, so Plumb reads them too. Whole hh-rlhf transcripts
("\\n\\nHuman: ...\\n\\nAssistant: ...", the layout of Anthropic's hh-rlhf) become message lists
first, so a multi-turn conversation keeps its turns; message lists keep the turns both sides
share as the prompt (at least the last turn stays each side's response); any other strings
are split where they first differ, by TRL's own `extract_prompt`.
"""

import re

TURN = re.compile(r"\n\n(Human|Assistant): ")
TRANSCRIPT_ROLES = {"Human": "user", "Assistant": "assistant"}


def is_transcript(text) -> bool:
    """Whether a string is an hh-rlhf transcript: it opens with a human turn marker."""
    return isinstance(text, str) and text.startswith("\n\nHuman: ")


def transcript_messages(text: str) -> list[dict]:
    """Split an hh-rlhf transcript into messages (the text before the first marker is empty and dropped)."""
    parts = TURN.split(text)
    return [
        {"role": TRANSCRIPT_ROLES[speaker], "content": content.strip()}
        for speaker, content in zip(parts[1::2], parts[2::2])
    ]


def shared_turns(chosen: list[dict], rejected: list[dict]) -> int:
    """How many leading turns both conversations share, leaving each side at least its last turn."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    return shared


def explicit_pair(row: dict) -> dict:
    """The row with `prompt`, `chosen` and `rejected` split apart (other columns kept)."""
    chosen, rejected = row["chosen"], row["rejected"]
    if is_transcript(chosen) and is_transcript(rejected):
        chosen, rejected = transcript_messages(chosen), transcript_messages(rejected)
    if isinstance(chosen, list) and isinstance(rejected, list):
        shared = shared_turns(chosen, rejected)
        split = {"prompt": chosen[:shared], "chosen": chosen[shared:], "rejected": rejected[shared:]}
    else:
        from trl.data_utils import extract_prompt

        split = extract_prompt({"chosen": chosen, "rejected": rejected})
    return {**row, **split}


def has_implicit_prompt(columns) -> bool:
    """Whether pairs with these columns carry their prompt inside chosen and rejected."""
    return {"chosen", "rejected"} <= set(columns) and "prompt" not in columns
