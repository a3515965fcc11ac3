"""Drift figures of a live campaign, read from the store when `/metrics` is scraped.

Two kinds of figures, both over live (not superseded, not retracted) pairwise judgments:

- `window_figures`: over the last `DRIFT_WINDOW` judgments of one kind of rater (human,
  simulated, model, imported): the tie and both-bad rates, the position-bias share (of the
  decided judgments, those that picked the candidate shown on the left) and, where the
  campaign names a `reward_model`, how often the decided judgments of pre-labelled tasks
  chose the model's candidate. A window, not the whole campaign, so that a change shows
  within hours instead of being averaged into weeks of earlier work, and so a scrape reads
  a bounded number of rows.
- `gold_figures`: every rater's gold judgments and how many chose the known answer (gold
  tasks are few, so all of them are read).
- `drift_over_time`: the window figures of consecutive blocks of one rater kind's judgments,
  oldest first, for the Campaign tab's plot of how they moved (no Prometheus needed).

The judgments become the quality report's own records (`export.records.judgment_records`,
sides as the rater saw them) and its maths (`domain.quality`), so `/metrics` and
`plumb collect quality` agree on what position bias and gold accuracy are.
"""

import numpy as np

from collect.domain.answers import BOTH_BAD
from collect.services.export.items import TaskItem
from collect.services.export.records import judgment_records
from collect.store import Assignment, Campaign, Judgment, Rater, Task, live_judgments_query

# How many of a rater kind's newest judgments the window figures cover: at 500, a share is known to about
# +-0.045 (95%), and a shift of 0.1 in position bias or model agreement stands out within one window.
DRIFT_WINDOW = 500
# The Campaign tab's blocks: at 100 judgments a share is known to about +-0.1, enough to see a drift of 0.2.
DRIFT_BLOCK = 100
MODEL_KIND = "model"  # a reward model's auto-labels: never compared with the model that wrote them


def window_figures(session, campaign: Campaign, rater_kind: str, *, window: int | None = None) -> dict | None:
    """The window figures of `rater_kind`'s last `window` (default `DRIFT_WINDOW`) live pairwise judgments in the
    campaign, or None when there are none.

    {judgments, ties, both_bad, decided, left_won, model_judgments, model_agreed}: counts within the window;
    `model_judgments` (decided judgments of pre-labelled tasks) is None unless the campaign names a reward model.
    """
    records = _records(session, campaign.id, Rater.kind == rater_kind, limit=DRIFT_WINDOW if window is None else window)
    return block_figures(records, campaign, rater_kind) if records else None


def drift_over_time(session, campaign: Campaign, rater_kind: str, *, block: int = DRIFT_BLOCK) -> list[dict]:
    """The window figures of consecutive blocks of `block` live pairwise judgments of `rater_kind`, oldest first
    (the last block may be shorter), each with `until`: the time of its newest judgment."""
    records = _records(session, campaign.id, Rater.kind == rater_kind)
    blocks = []
    for start in range(0, len(records), block):
        part = records[start : start + block]
        blocks.append({**block_figures(part, campaign, rater_kind), "until": part[-1]["created_at"]})
    return blocks


def block_figures(records: list[dict], campaign: Campaign, rater_kind: str) -> dict:
    """The window figures (see `window_figures`) of some of a rater kind's judgment records."""
    # Imported here: the quality maths loads scipy, which a server that is never scraped need not pay for.
    from collect.domain.quality.judgments import judgment_table, winning_candidate
    from collect.domain.quality.raters import position_bias

    table = judgment_table(records, source=campaign.name)
    choices = np.array([record["choice"] for record in records])
    left_won, decided, _ = position_bias(table)  # per rater; the campaign's share pools them
    figures = {
        "judgments": len(records),
        "ties": int((choices == "tie").sum()),
        "both_bad": int((choices == BOTH_BAD).sum()),
        "decided": int(decided.sum()),
        "left_won": int(left_won.sum()),
        "model_judgments": None,
        "model_agreed": None,
    }
    if (campaign.definition or {}).get("reward_model") and rater_kind != MODEL_KIND:
        scored = (table.prelabel != "") & (table.winner != 0)
        figures["model_judgments"] = int(scored.sum())
        figures["model_agreed"] = int((scored & (winning_candidate(table) == table.prelabel)).sum())
    return figures


def gold_figures(session, campaign: Campaign) -> list[dict]:
    """Each rater's live gold judgments in the campaign: [{rater, rater_kind, gold, correct}], by rater name."""
    from collect.domain.quality.judgments import judgment_table
    from collect.domain.quality.raters import gold_accuracy, rater_codes

    records = _records(session, campaign.id, Task.is_gold.is_(True))
    records = [record for record in records if record["gold"] is not None]  # a gold task stored without its answer
    if not records:
        return []
    table = judgment_table(records, source=campaign.name)
    correct, gold = gold_accuracy(table)
    kinds = {record["rater"]: record["rater_kind"] for record in records}
    return [
        {"rater": str(rater), "rater_kind": kinds[str(rater)], "gold": int(gold[r]), "correct": int(correct[r])}
        for r, rater in enumerate(rater_codes(table)[0])
    ]


def _records(session, campaign_id: int, condition, *, limit: int | None = None) -> list[dict]:
    """The quality report's records of the campaign's live pairwise judgments that meet `condition`, oldest first:
    the newest `limit` of them when given. Each record also carries `rater_kind` and the judgment's `created_at`."""
    query = (
        live_judgments_query(campaign_id)
        .order_by(None)
        .add_columns(Task, Rater.name, Rater.kind, Assignment.candidate_order)
        .join(Rater, Rater.id == Judgment.rater_id)
        .join(Assignment, Assignment.id == Judgment.assignment_id)
        .where(Task.kind == "pairwise", condition)
        .order_by(Judgment.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query).all()[::-1]
    # One item per judgment, in the order read, so the records come out oldest first. The completions' texts are
    # not read: the figures here need no answer lengths (they come out as 0 in the records).
    items = [
        TaskItem(
            task=task,
            prompt_id="",
            prompt=[],
            completions=[[] for _ in task.candidate_ids],
            policies=[],
            judgments=[(name, judgment)],
            shown_orders={judgment.assignment_id: order},
            rater_kinds={name: kind},
        )
        for judgment, task, name, kind, order in rows
    ]
    records, _ = judgment_records(items)
    for record, (judgment, _, _, kind, _) in zip(records, rows):
        record["rater_kind"], record["created_at"] = kind, judgment.created_at
    return records
