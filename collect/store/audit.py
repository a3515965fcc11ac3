"""The audit trail: one row per thing a person or a command did, written in the same transaction."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect.store.models import AuditEvent, Campaign, Rater


def record_event(
    *, session: Session, action: str, rater: Rater | None = None, campaign: Campaign | None = None, **detail
) -> AuditEvent:
    """Append an audit event (e.g. `judgment.submitted`) with free-form JSON `detail`."""
    event = AuditEvent(
        action=action,
        rater_id=rater.id if rater else None,
        campaign_id=campaign.id if campaign else None,
        detail=detail,
    )
    session.add(event)
    return event


def audit_events(*, session: Session, campaign: Campaign | None = None, action: str | None = None) -> list[AuditEvent]:
    """Audit events, oldest first, optionally of one campaign and one action."""
    query = select(AuditEvent).order_by(AuditEvent.id)
    if campaign is not None:
        query = query.where(AuditEvent.campaign_id == campaign.id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    return list(session.scalars(query))
