"""Campaign progress for monitoring: every campaign's counts in the Prometheus text format (`GET /metrics`)."""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import select

from collect.services.campaign_import import STAGING_PREFIX
from collect.services.read_models import campaign_stats
from collect.store import Campaign

GAUGES = {
    "tasks": "Tasks in the campaign (gold included).",
    "gold_tasks": "Gold (quality-check) tasks in the campaign.",
    "complete_tasks": "Non-gold tasks with as many live judgments as their target overlap.",
    "judgments": "Live (not superseded, not retracted) judgments.",
    "raters": "Raters with at least one live judgment.",
}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _CampaignCollector:
    """Reads every campaign's counts from one session when scraped."""

    def __init__(self, session):
        self.session = session

    def collect(self):
        # An import in progress stages its rows under a hidden campaign: not a campaign to monitor.
        campaigns = select(Campaign).where(~Campaign.name.startswith(STAGING_PREFIX)).order_by(Campaign.id)
        stats = [campaign_stats(self.session, campaign) for campaign in self.session.scalars(campaigns)]
        for key, help_text in GAUGES.items():
            family = GaugeMetricFamily(f"plumb_{key}", help_text, labels=["campaign"])
            for row in stats:
                family.add_metric([row["campaign"]], row[key])
            yield family


def prometheus_text(session) -> str:
    """One gauge per count, one sample per campaign, labelled with the campaign's name."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_CampaignCollector(session))
    return generate_latest(registry).decode()
