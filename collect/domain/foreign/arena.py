"""Chatbot Arena battle logs: each battle is a prompt, the two models' answers, and its judge's vote.

Shape read: FastChat's `clean_battle_data.py --mode conv_release` (`clean_battle_conv_DATE.json`)
and the Hub's `lmsys/chatbot_arena_conversations`: {question_id, model_a, model_b, winner
(model_a | model_b | tie | tie (bothbad)), judge, conversation_a, conversation_b (OpenAI-style
messages), turn, anony, language, tstamp, ...}. The turns both conversations share (the user's
first message) are the prompt; the rest of each conversation, later user turns included, is that
model's candidate, with the model as its policy, so the leaderboard ranks the same models. The vote
is one judgment by the rater `chatbot-arena:JUDGE`. The default `--mode simple` file has no
conversations: such battles are counted out.
"""

from collect.domain.foreign.common import Conversion, checked_messages, plain_messages, rater_name
from plumb.data import DataError
from plumb.implicit_prompt import shared_turns

TOOL = "chatbot-arena"
WINNERS = {
    "model_a": ([1, 2], False),
    "model_b": ([2, 1], False),
    "tie": ([1, 1], False),
    "tie (bothbad)": ([1, 1], True),
}


def is_arena(records: list[dict]) -> bool:
    """Whether the records are arena battles: model_a, model_b and the winner."""
    return {"model_a", "model_b", "winner"} <= set(records[0] if records else {})


def convert(records: list[dict], *, source: str, label_field: str | None = None) -> Conversion:
    """Every battle with its conversations as a row with the judge's vote."""
    out = Conversion(TOOL)
    for index, battle in enumerate(records):
        where = f"{source}: row {index}"
        if not battle.get("conversation_a") or not battle.get("conversation_b"):
            out.left_out["battle without its conversations (a clean_battle --mode simple file)"] += 1
            continue
        sides = []
        for key in ("conversation_a", "conversation_b"):
            if not isinstance(battle[key], list):
                raise DataError(f"{where}: field '{key}': expected a list of messages")
            sides.append(plain_messages(checked_messages(battle[key], where, key)))
        shared = shared_turns(*sides)
        if shared == 0:
            raise DataError(f"{where}: field 'conversation_b': the two conversations do not open with the same turn")
        models = [battle.get("model_a"), battle.get("model_b")]
        for key, model in zip(("model_a", "model_b"), models):
            if not isinstance(model, str) or not model:
                raise DataError(f"{where}: field '{key}': expected the model's name, got {model!r}")
        winner = battle.get("winner")
        if winner not in WINNERS:
            raise DataError(f"{where}: field 'winner': expected one of {', '.join(WINNERS)}, got {winner!r}")
        ranks, both_bad = WINNERS[winner]
        judge = battle.get("judge") or "unknown"
        out.add(
            {
                "prompt_id": f"{TOOL}-{battle.get('question_id') or index}",
                "prompt": sides[0][:shared],
                "candidates": [{"policy": m, "completion": side[shared:]} for m, side in zip(models, sides)],
                "judgments": [{"rater": rater_name(TOOL, judge), "ranks": ranks, "both_bad": both_bad}],
            }
        )
    if not out.rows:
        raise DataError(
            f"{source}: no battle has its conversations: write the log with clean_battle --mode conv_release"
        )
    return out
