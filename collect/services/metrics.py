"""Campaign progress for monitoring: every campaign's counts in the Prometheus text format (`GET /metrics`)."""

from sqlalchemy import select

from collect.services.read_models import campaign_stats
from collect.store import Campaign

GAUGES = {
    "tasks": "Tasks in the campaign (gold included).",
    "gold_tasks": "Gold (quality-check) tasks in the campaign.",
    "complete_tasks": "Non-gold tasks with as many live judgments as their target overlap.",
    "judgments": "Live (not superseded, not retracted) judgments.",
    "raters": "Raters with at least one live judgment.",
}


def prometheus_text(session) -> str:
    """One gauge per count, one sample per campaign, labelled with the campaign's name."""
    stats = [campaign_stats(session, campaign) for campaign in session.scalars(select(Campaign).order_by(Campaign.id))]
    lines = []
    for key, help_text in GAUGES.items():
        lines += [f"# HELP plumb_{key} {help_text}", f"# TYPE plumb_{key} gauge"]
        lines += [f'plumb_{key}{{campaign="{_label(row["campaign"])}"}} {row[key]}' for row in stats]
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    # The exposition format escapes backslash, double quote and newline in label values.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
