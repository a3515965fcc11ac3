"""Campaign progress and drift for monitoring, read from the store at scrape time (`GET /metrics`).

Every figure here is computed from the database when Prometheus scrapes, not counted in
memory, so it survives restarts and is the same whichever app replica is asked. Counts
that only grow (first submissions, the seconds histogram) are counters and histograms;
shares and counts that can fall are gauges. Labels: `campaign`; `kind`, the task kind as
the store names it (pairwise, ranking, rating); `rater_kind`, who stands behind the account
(human, simulated, model, imported); `rater`, the rater's name (per-rater gold accuracy).
Campaigns an import is still staging are left out.
"""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString
from sqlalchemy import case, func, select

from collect.services import drift
from collect.services.campaign_import import STAGING_PREFIX
from collect.services.read_models import campaign_stats
from collect.store import Campaign, Judgment, Rater, Task

GAUGES = {
    "tasks": "Tasks in the campaign (gold included).",
    "gold_tasks": "Gold (quality-check) tasks in the campaign.",
    "complete_tasks": "Non-gold tasks with as many live judgments as their target overlap.",
    "judgments": "Live (not superseded, not retracted) judgments.",
    "raters": "Raters with at least one live judgment.",
}
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds a rater spends on one judgment: from a click-through to a long read of two long answers.
SECONDS_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class StoreCollector:
    """A prometheus_client collector that reads every figure from the store, in one read session per scrape."""

    def __init__(self, sessions):
        self.sessions = sessions

    def collect(self):
        """The families of `store_families`, read now."""
        with self.sessions() as session:
            families = store_families(session)
        yield from families


def store_families(session) -> list:
    """Every metric family the store gives: progress, judgments by kind, seconds per judgment, drift, gold."""
    # An import in progress stages its rows under a hidden campaign: not a campaign to monitor.
    campaigns = session.scalars(
        select(Campaign).where(~Campaign.name.startswith(STAGING_PREFIX)).order_by(Campaign.id)
    ).all()
    submitted, seconds, judged = _judgment_families(session)
    return [
        *_progress_families(session, campaigns),
        submitted,
        seconds,
        *_drift_families(session, campaigns, judged),
        *_gold_families(session, campaigns),
    ]


def _progress_families(session, campaigns) -> list:
    stats = [campaign_stats(session, campaign) for campaign in campaigns]
    families = []
    for key, help_text in GAUGES.items():
        family = GaugeMetricFamily(f"plumb_{key}", help_text, labels=["campaign"])
        for row in stats:
            family.add_metric([row["campaign"]], row[key])
        families.append(family)
    # What the scheduler can still hand out: arena battles are started by raters, and gold tasks only check them.
    open_counts = dict(
        session.execute(
            select(Task.campaign_id, func.count(Task.id))
            .where(Task.source == "pool", Task.is_gold.is_(False), Task.judgment_count < Task.target_overlap)
            .group_by(Task.campaign_id)
        ).all()
    )
    family = GaugeMetricFamily(
        "plumb_open_tasks",
        "Pool tasks (not gold) with fewer live judgments than their target overlap.",
        labels=["campaign"],
    )
    for campaign in campaigns:
        family.add_metric([campaign.name], open_counts.get(campaign.id, 0))
    families.append(family)
    return families


def _judgment_families(session) -> tuple:
    """(the counter of first submissions, the histogram of their seconds), by campaign, task kind and rater kind,
    and the set of (campaign name, rater kind) with pairwise judgments, for the drift figures.

    A first submission is the start of a (task, rater) chain: judgments are append-only and an edit or an undo
    adds a row that supersedes another, so these rows only ever grow in number, as a counter must.
    """
    labels = ["campaign", "kind", "rater_kind"]
    timed = Judgment.seconds_spent.is_not(None)
    bucket_counts = [
        func.sum(case((timed & (Judgment.seconds_spent <= bound), 1), else_=0)) for bound in SECONDS_BUCKETS
    ]
    rows = session.execute(
        select(
            Campaign.name,
            Task.kind,
            Rater.kind,
            func.count(Judgment.id),
            func.sum(case((timed, 1), else_=0)),
            func.sum(Judgment.seconds_spent),
            *bucket_counts,
        )
        .join(Task, Task.id == Judgment.task_id)
        .join(Campaign, Campaign.id == Task.campaign_id)
        .join(Rater, Rater.id == Judgment.rater_id)
        .where(Judgment.supersedes_id.is_(None), ~Campaign.name.startswith(STAGING_PREFIX))
        .group_by(Campaign.name, Task.kind, Rater.kind)
        .order_by(Campaign.name, Task.kind, Rater.kind)
    ).all()
    submitted = CounterMetricFamily(
        "plumb_judgments_submitted",
        "Judgments submitted for the first time (an edit or an undo does not count again).",
        labels=labels,
    )
    seconds = HistogramMetricFamily(
        "plumb_judgment_seconds", "Seconds raters spent on a judgment, as their client reported.", labels=labels
    )
    judged = set()
    for campaign, kind, rater_kind, count, timed_count, total, *cumulative in rows:
        submitted.add_metric([campaign, kind, rater_kind], count)
        if kind == "pairwise":
            judged.add((campaign, rater_kind))
        if not timed_count:
            continue
        buckets = [(floatToGoString(b), int(n)) for b, n in zip(SECONDS_BUCKETS, cumulative)]
        seconds.add_metric([campaign, kind, rater_kind], [*buckets, ("+Inf", int(timed_count))], float(total))
    return submitted, seconds, judged


def _drift_families(session, campaigns, judged: set) -> list:
    labels = ["campaign", "rater_kind"]
    window = f"the last {drift.DRIFT_WINDOW} live pairwise judgments of each rater kind"
    families = {
        "judgments": GaugeMetricFamily(
            "plumb_drift_window_judgments", f"Judgments in the drift window ({window}).", labels=labels
        ),
        "tie": GaugeMetricFamily("plumb_tie_rate", f"Share of ties in {window}.", labels=labels),
        "both_bad": GaugeMetricFamily(
            "plumb_both_bad_rate", f"Share of 'both bad' answers in {window}.", labels=labels
        ),
        "left": GaugeMetricFamily(
            "plumb_position_bias",
            f"Of the decided judgments in {window}, the share that picked the candidate shown on the left "
            "(0.5 when sides do not matter).",
            labels=labels,
        ),
        "model_judgments": GaugeMetricFamily(
            "plumb_reward_model_judgments",
            f"Decided judgments of tasks the campaign's reward model pre-labelled, in {window}.",
            labels=labels,
        ),
        "model": GaugeMetricFamily(
            "plumb_reward_model_agreement",
            f"Of those, the share that chose the reward model's preferred candidate ({window}).",
            labels=labels,
        ),
    }
    for campaign in campaigns:
        for kind in sorted(kind for name, kind in judged if name == campaign.name):
            figures = drift.window_figures(session, campaign, kind)
            if figures is None:  # only superseded or retracted judgments
                continue
            key = [campaign.name, kind]
            families["judgments"].add_metric(key, figures["judgments"])
            families["tie"].add_metric(key, figures["ties"] / figures["judgments"])
            families["both_bad"].add_metric(key, figures["both_bad"] / figures["judgments"])
            if figures["decided"]:
                families["left"].add_metric(key, figures["left_won"] / figures["decided"])
            if figures["model_judgments"] is not None:
                families["model_judgments"].add_metric(key, figures["model_judgments"])
                if figures["model_judgments"]:
                    families["model"].add_metric(key, figures["model_agreed"] / figures["model_judgments"])
    return list(families.values())


def _gold_families(session, campaigns) -> list:
    by_kind = {
        "gold": GaugeMetricFamily(
            "plumb_gold_judgments", "Live judgments of gold tasks.", labels=["campaign", "rater_kind"]
        ),
        "correct": GaugeMetricFamily(
            "plumb_gold_correct",
            "Live judgments of gold tasks that chose the known answer.",
            labels=["campaign", "rater_kind"],
        ),
        "accuracy": GaugeMetricFamily(
            "plumb_gold_accuracy",
            "Share of gold judgments that chose the known answer.",
            labels=["campaign", "rater_kind"],
        ),
    }
    rater_labels = ["campaign", "rater", "rater_kind"]
    per_rater = {
        "gold": GaugeMetricFamily("plumb_rater_gold_judgments", "A rater's live gold judgments.", labels=rater_labels),
        "correct": GaugeMetricFamily(
            "plumb_rater_gold_correct",
            "A rater's live gold judgments that chose the known answer.",
            labels=rater_labels,
        ),
        "accuracy": GaugeMetricFamily(
            "plumb_rater_gold_accuracy",
            "A rater's share of gold judgments that chose the known answer.",
            labels=rater_labels,
        ),
    }
    for campaign in campaigns:
        totals = {}
        for row in drift.gold_figures(session, campaign):
            key = [campaign.name, row["rater"], row["rater_kind"]]
            per_rater["gold"].add_metric(key, row["gold"])
            per_rater["correct"].add_metric(key, row["correct"])
            per_rater["accuracy"].add_metric(key, row["correct"] / row["gold"])
            gold, correct = totals.get(row["rater_kind"], (0, 0))
            totals[row["rater_kind"]] = (gold + row["gold"], correct + row["correct"])
        for kind, (gold, correct) in sorted(totals.items()):
            by_kind["gold"].add_metric([campaign.name, kind], gold)
            by_kind["correct"].add_metric([campaign.name, kind], correct)
            by_kind["accuracy"].add_metric([campaign.name, kind], correct / gold)
    return [*by_kind.values(), *per_rater.values()]
