"""The preference store: typed tables and keyword-only functions that take a session.

Imports neither Gradio nor torch, so the REST API, the scheduler and the command line
can use it in a lightweight process.
"""

from collect.store.audit import audit_events, record_event
from collect.store.campaigns import (
    CampaignError,
    add_candidate,
    add_prompt,
    build_tasks,
    campaign_by_name,
    campaign_counts,
    create_campaign,
    ensure_policy,
)
from collect.store.engine import (
    make_engine,
    normalize_url,
    open_store,
    opened_store,
    schema_problem,
    session_factory,
    upgrade,
)
from collect.store.judgments import (
    JudgmentError,
    live_judgment,
    live_judgments_per_rater,
    live_judgments_query,
    record_judgment,
    retract_judgment,
)
from collect.store.models import (
    ROLES,
    STAFF_ROLES,
    Adjudication,
    Assignment,
    AuditEvent,
    Base,
    Campaign,
    Candidate,
    Judgment,
    Policy,
    Prompt,
    Rater,
    StoreError,
    Task,
)
from collect.store.raters import (
    RaterError,
    authenticate,
    create_rater,
    rater_by_name,
    rater_by_token,
    require_role,
)

__all__ = [
    "ROLES",
    "STAFF_ROLES",
    "Adjudication",
    "Assignment",
    "AuditEvent",
    "Base",
    "Campaign",
    "CampaignError",
    "Candidate",
    "Judgment",
    "JudgmentError",
    "Policy",
    "Prompt",
    "Rater",
    "RaterError",
    "StoreError",
    "Task",
    "add_candidate",
    "add_prompt",
    "audit_events",
    "authenticate",
    "build_tasks",
    "campaign_by_name",
    "campaign_counts",
    "create_campaign",
    "create_rater",
    "ensure_policy",
    "live_judgment",
    "live_judgments_per_rater",
    "live_judgments_query",
    "make_engine",
    "normalize_url",
    "open_store",
    "opened_store",
    "rater_by_name",
    "rater_by_token",
    "record_event",
    "record_judgment",
    "require_role",
    "retract_judgment",
    "schema_problem",
    "session_factory",
    "upgrade",
]
