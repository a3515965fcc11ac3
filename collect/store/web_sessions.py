"""Signed-in page sessions: opened at sign-in, ended by sign-out, expiry, a password reset or a deactivation.

The cookie's token is stored as its SHA-256 only. A session is alive while its rater is
active, its password is the one it signed in with, it was used within the idle limit and
is younger than the absolute limit. `last_seen_at` is written at most once a minute, so a
busy page does not turn every read into a write.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from collect.store.api_tokens import token_hash
from collect.store.limits import is_storable
from collect.store.models import Rater, WebSession, utcnow

TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SessionLimits:
    """How long a page session lives: since its last use (`idle`) and since sign-in (`absolute`)."""

    idle: timedelta = timedelta(hours=12)
    absolute: timedelta = timedelta(days=7)


def password_mark(password_hash: str | None) -> str:
    """A fingerprint of a rater's password hash: it changes whenever the password does."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()


def open_web_session(*, session: Session, rater: Rater, token: str, now: datetime | None = None) -> WebSession:
    """Store a new page session for `rater` under the cookie's `token`."""
    now = now or utcnow()
    stored = WebSession(
        rater_id=rater.id,
        token_hash=token_hash(token),
        password_mark=password_mark(rater.password_hash),
        created_at=now,
        last_seen_at=now,
    )
    session.add(stored)
    session.flush()
    return stored


def web_session_rater(
    *, session: Session, token: str, limits: SessionLimits, now: datetime | None = None
) -> Rater | None:
    """The rater of a live page session (touching its idle clock), or None; a dead session is ended on the way."""
    if not token or not is_storable(token):
        return None
    now = now or utcnow()
    row = session.execute(
        select(WebSession, Rater)
        .join(Rater, Rater.id == WebSession.rater_id)
        .where(WebSession.token_hash == token_hash(token), WebSession.ended_at.is_(None))
    ).first()
    if row is None:
        return None
    stored, rater = row
    alive = (
        rater.active
        and stored.password_mark == password_mark(rater.password_hash)
        and now - stored.last_seen_at <= limits.idle
        and now - stored.created_at <= limits.absolute
    )
    if not alive:
        stored.ended_at = now
    elif now - stored.last_seen_at >= TOUCH_EVERY:
        stored.last_seen_at = now
    return rater if alive else None


def end_web_sessions(*, session: Session, token: str | None = None, rater_id: int | None = None) -> int:
    """End one session (by its token) or all of a rater's; returns how many were live."""
    statement = update(WebSession).where(WebSession.ended_at.is_(None))
    if token is not None:
        statement = statement.where(WebSession.token_hash == token_hash(token))
    if rater_id is not None:
        statement = statement.where(WebSession.rater_id == rater_id)
    return session.execute(statement.values(ended_at=utcnow())).rowcount
