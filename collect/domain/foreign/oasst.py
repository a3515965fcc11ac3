"""OpenAssistant conversation trees: every user turn with ranked assistant replies becomes a ranking judgment.

Shapes read (OpenAssistant oasst1/oasst2 exports): trees, one per line, {message_tree_id,
tree_state, prompt: MESSAGE}, where a MESSAGE is {message_id, role (prompter | assistant), text,
rank (0 = best among its siblings, null when unranked), deleted, model_name?, replies: [MESSAGE]}
(as in Open-Assistant's `model_eval/manual/data/en_100_tree.jsonl`); a file of bare root messages;
and the flat message table of the Hub's `OpenAssistant/oasst1` (one message per row, `parent_id`).

A prompter message with two or more assistant replies is a row: the conversation up to it is the
prompt, the replies are the candidates (policy `oasst:MODEL`, or `oasst:human` for a person's
reply), and their ranks, one merged ranking by OpenAssistant's rankers, are one judgment by the
rater `oasst:FILE`. A group nobody ranked is imported without labels; a reply without a rank in a
ranked group is unranked in the judgment; deleted replies and single replies are counted out.
"""

from collect.domain.foreign.common import Conversion, rater_name, source_name
from plumb.data import DataError

TOOL = "oasst"
ROLES = {"prompter": "user", "assistant": "assistant"}


def is_oasst(records: list[dict]) -> bool:
    """Whether the records are OpenAssistant trees, root messages or message rows."""
    first = records[0] if records else {}
    tree_root = isinstance(first.get("prompt"), dict) and "message_id" in first["prompt"]
    return tree_root or {"message_id", "role", "text"} <= set(first)


def convert(records: list[dict], *, source: str, label_field: str | None = None) -> Conversion:
    """Every ranked (or rankable) group of assistant replies as a row with its ranking."""
    out = Conversion(TOOL)
    rater = rater_name(TOOL, source_name(source))
    roots = list(_roots(records, source))
    for index, root in roots:
        _walk(root, [], f"{source}: row {index}", rater, out)
    out.counts = {
        "trees": len(roots),
        "ranked_groups": sum(1 for row in out.rows if row["judgments"] and None not in row["judgments"][0]["ranks"]),
        "partly_ranked_groups": sum(1 for row in out.rows if row["judgments"] and None in row["judgments"][0]["ranks"]),
    }
    return out


def _roots(records: list[dict], source: str):
    """(row index, root message) of every tree in the file, whichever of the three shapes it has."""
    if isinstance(records[0].get("prompt"), dict):
        for index, record in enumerate(records):
            if not isinstance(record.get("prompt"), dict):
                raise DataError(f"{source}: row {index}: field 'prompt': expected the tree's root message")
            yield index, record["prompt"]
        return
    if all("replies" in record for record in records) or not any("parent_id" in record for record in records):
        yield from enumerate(records)
        return
    # The flat table: link each message to its parent, keeping the file's order among siblings.
    nodes = {record["message_id"]: {**record, "replies": [], "_row": i} for i, record in enumerate(records)}
    roots = []
    for node in nodes.values():
        parent = nodes.get(node.get("parent_id"))
        if node.get("parent_id") is None:
            roots.append(node)
        elif parent is None:
            raise DataError(f"{source}: row {node['_row']}: field 'parent_id': no message {node['parent_id']!r}")
        else:
            parent["replies"].append(node)
    yield from ((node["_row"], node) for node in roots)


def _walk(message: dict, path: list[dict], where: str, rater: str, out: Conversion) -> None:
    at = f"{where}: message {message.get('message_id')}"
    role, text = message.get("role"), message.get("text")
    if role not in ROLES:
        raise DataError(f"{at}: field 'role': expected prompter or assistant, got {role!r}")
    if not isinstance(text, str):
        raise DataError(f"{at}: field 'text': expected text, got {type(text).__name__}")
    path = [*path, {"role": ROLES[role], "content": text}]
    replies = [reply for reply in message.get("replies") or [] if isinstance(reply, dict)]
    if role == "prompter":
        _group(message, path, [r for r in replies if r.get("role") == "assistant"], at, rater, out)
    for reply in replies:
        if not reply.get("deleted"):
            _walk(reply, path, where, rater, out)


def _group(message: dict, path: list[dict], replies: list[dict], at: str, rater: str, out: Conversion) -> None:
    live = [reply for reply in replies if not reply.get("deleted")]
    out.left_out["deleted reply"] += len(replies) - len(live)
    if len(live) < 2:
        out.left_out["user turn with a single reply (nothing to compare)"] += len(live)
        return
    for reply in live:
        if not isinstance(reply.get("text"), str):
            raise DataError(f"{at}: reply {reply.get('message_id')}: field 'text': expected text")
        rank = reply.get("rank")
        if rank is not None and (type(rank) is not int or rank < 0):
            raise DataError(f"{at}: reply {reply.get('message_id')}: field 'rank': expected 0, 1, ... or null")
    ranks = [reply["rank"] + 1 if reply.get("rank") is not None else None for reply in live]
    out.add(
        {
            "prompt_id": f"{TOOL}-{message.get('message_id')}",
            "prompt": path,
            "candidates": [
                {"policy": f"{TOOL}:{reply.get('model_name') or 'human'}", "completion": reply["text"]}
                for reply in live
            ],
            "judgments": [{"rater": rater, "ranks": ranks}] if any(r is not None for r in ranks) else [],
        }
    )
