"""Every live pairwise judgment as the record `plumb collect quality` reads, and every battle the leaderboard reads.

One record per judgment: `rater`, `item` (the task), `left`/`right` (candidate ids in the
order this rater saw them), `choice` (left, right, tie, both_bad), `strength` (1 slightly
... 3 much better), the two answers' lengths in characters, `seconds` spent, and on gold
tasks `gold`, the better candidate's id (or "tie"), `simulated`, true for a simulated
rater's judgment (`plumb collect simulate`), and `model_label`, true for an auto-label (a
rater of kind `model`, `plumb collect score`). On a task the reward model scored,
`prelabel` is the id of the candidate it preferred and `prelabel_confidence` how sure it
was (both None otherwise), and `prelabel_seen` whether this rater was shown that answer
before voting (None: the task had no pre-label when they voted), so the quality report
can measure the model against the raters and the raters' anchoring on it. Position bias
is measurable because the order is the one shown, not the stored canonical one.
"""

from collections import Counter

from collect.domain.answers import BOTH_BAD, IDENTITY_LEAK


def judgment_records(items) -> tuple[list[dict], Counter]:
    """Records of every live judgment of pairwise tasks (`TaskItem`s); other kinds are counted out."""
    records, left_out = [], Counter()
    for item in items:
        if item.task.kind != "pairwise":
            left_out["not a pairwise task"] += 1
            continue
        for rater_name, judgment in item.judgments:
            records.append(_record(item, rater_name, judgment))
    return records, left_out


def _record(item, rater_name: str, judgment) -> dict:
    order = item.shown_orders[judgment.assignment_id]
    left, right = (f"c{item.task.candidate_ids[k]}" for k in order)
    shown = judgment.preference if order[0] == 0 else -(judgment.preference or 0)  # positive: left better
    if judgment.both_bad:
        choice = BOTH_BAD
    else:
        choice = "left" if shown > 0 else "right" if shown < 0 else "tie"
    text_length = [sum(len(m["content"]) for m in item.completions[k]) for k in order]
    prelabel = item.task.prelabel or {}
    return {
        "rater": rater_name,
        "item": f"task-{item.task.id}",
        "left": left,
        "right": right,
        "choice": choice,
        "strength": abs(shown) if choice in ("left", "right") else None,
        "left_length": text_length[0],
        "right_length": text_length[1],
        "seconds": judgment.seconds_spent,
        "gold": _gold(item),
        "simulated": item.rater_kinds.get(rater_name) == "simulated",
        "model_label": item.rater_kinds.get(rater_name) == "model",
        # The task's pre-label now, and whether this rater saw it (a vote cast before scoring saw none).
        "prelabel": f"c{item.task.candidate_ids[prelabel['preferred']]}" if prelabel else None,
        "prelabel_confidence": float(prelabel["confidence"]) if prelabel else None,
        "prelabel_seen": judgment.prelabel_seen,
    }


def _gold(item) -> str | None:
    if not item.task.is_gold or not item.task.gold_answer:
        return None
    ranks = item.task.gold_answer["candidate_ranks"]
    best = [cid for cid, rank in ranks.items() if rank == min(ranks.values())]
    return f"c{best[0]}" if len(best) == 1 else "tie"


def battle_records(items, *, include_identity_leaks: bool = False) -> list[dict]:
    """Every live pairwise judgment between two different policies as a battle: model_a, model_b, winner.

    Votes flagged as identity leaks are left out unless asked for: a rater who knows which
    model answered judges the name, not the answer.
    """
    battles = []
    for item in items:
        if item.task.kind != "pairwise" or item.task.is_gold or len(set(item.policies)) < 2:
            continue
        for _, judgment in item.judgments:
            if IDENTITY_LEAK in (judgment.flags or []) and not include_identity_leaks:
                continue
            preference = judgment.preference or 0  # canonical: positive when the first candidate is better
            winner = (
                BOTH_BAD
                if judgment.both_bad
                else "model_a"
                if preference > 0
                else "model_b"
                if preference < 0
                else "tie"
            )
            battles.append({"model_a": item.policies[0], "model_b": item.policies[1], "winner": winner})
    return battles
