"""REST API tokens: issued with scopes and an optional expiry, shown once, stored as their SHA-256, revocable.

Scopes say what a token may do: `rate` (answer tasks, see progress), `review` (export the
campaign's data), `admin` (manage other raters' tokens, read `/metrics`). A token never
holds more than its rater's role allows, and a change of role narrows it at once, since
the check is made on every request against the rater's current role. Rotating issues a new
token and revokes the old one; deactivating a rater revokes every token, so reactivating
the account revives none.
"""

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from collect.store.audit import record_event
from collect.store.limits import is_storable
from collect.store.models import ApiToken, Rater, StoreError, utcnow

SCOPES = ("rate", "review", "admin")
SCOPES_OF_ROLE = {"rater": ("rate",), "reviewer": ("rate", "review"), "admin": SCOPES}


class TokenError(StoreError):
    """A token cannot be issued, found or revoked as asked; the message says why."""


def token_hash(token: str) -> str:
    """The stored form of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_scopes(scopes, role: str) -> list[str]:
    """The scopes as a sorted list; `TokenError` for an unknown one or one the role does not allow."""
    scopes = list(SCOPES_OF_ROLE[role] if scopes is None else scopes)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise TokenError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
    beyond = sorted(set(scopes) - set(SCOPES_OF_ROLE[role]))
    if beyond:
        raise TokenError(f"a {role}'s token cannot have the scope(s) {', '.join(beyond)}")
    return sorted(scopes, key=SCOPES.index)


def issue_token(
    *,
    session: Session,
    rater: Rater,
    scopes=None,
    expires_at: datetime | None = None,
    by: Rater | None = None,
) -> tuple[ApiToken, str]:
    """A new token for `rater` (scopes default to all their role allows); returns (row, the token, shown once)."""
    if expires_at is not None and expires_at <= utcnow():
        raise TokenError(f"the expiry {expires_at:%Y-%m-%d %H:%M} UTC is in the past")
    token = secrets.token_urlsafe(32)
    row = ApiToken(
        rater_id=rater.id, token_hash=token_hash(token), scopes=check_scopes(scopes, rater.role), expires_at=expires_at
    )
    session.add(row)
    session.flush()
    record_event(session=session, action="token.issued", rater=by or rater, token_id=row.id, of=rater.name)
    return row, token


# Every REST call runs this; built once, since building a SELECT costs more than running it on a unique index.
_BY_TOKEN = (
    select(ApiToken, Rater)
    .join(Rater, Rater.id == ApiToken.rater_id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None), Rater.active.is_(True))
)


def token_owner(
    *, session: Session, token: str, now: datetime | None = None
) -> tuple[Rater, list[str]] | tuple[None, None]:
    """(the active rater, the token's scopes within their role) for a live token, else (None, None)."""
    if not token or not is_storable(token):  # no token holds a NUL or a lone surrogate (which could not be hashed)
        return None, None
    row = session.execute(_BY_TOKEN, {"token_hash": token_hash(token)}).first()
    if row is None or (row[0].expires_at is not None and row[0].expires_at <= (now or utcnow())):
        return None, None
    stored, rater = row
    return rater, [scope for scope in stored.scopes if scope in SCOPES_OF_ROLE.get(rater.role, ())]


def tokens_of(*, session: Session, rater: Rater) -> list[ApiToken]:
    """Every token ever issued to `rater`, newest first (revoked and expired ones included)."""
    return list(session.scalars(select(ApiToken).where(ApiToken.rater_id == rater.id).order_by(ApiToken.id.desc())))


def revoke_tokens(
    *, session: Session, rater: Rater, token_id: int | None = None, token: str | None = None, by: Rater | None = None
) -> int:
    """Revoke one of `rater`'s tokens (by id or by the token itself) or, with neither, all; returns how many."""
    statement = update(ApiToken).where(ApiToken.rater_id == rater.id, ApiToken.revoked_at.is_(None))
    if token_id is not None:
        statement = statement.where(ApiToken.id == token_id)
    if token is not None:
        statement = statement.where(ApiToken.token_hash == token_hash(token))
    revoked = session.execute(statement.values(revoked_at=utcnow())).rowcount
    if token_id is not None and not revoked:
        raise TokenError(f"{rater.name} has no live token {token_id}")
    record_event(session=session, action="token.revoked", rater=by or rater, of=rater.name, count=revoked)
    return revoked


def rotate_token(
    *, session: Session, rater: Rater, token_id: int | None = None, token: str | None = None
) -> tuple[ApiToken, str]:
    """Replace a live token of `rater` (by id, or the token itself) by a new one with the same scopes and expiry."""
    query = select(ApiToken).where(ApiToken.rater_id == rater.id, ApiToken.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(ApiToken.id == token_id)
    if token is not None:
        query = query.where(ApiToken.token_hash == token_hash(token))
    old = session.scalar(query) if (token_id, token) != (None, None) else None
    if old is None:
        raise TokenError(f"{rater.name} has no live token" + (f" {token_id}" if token_id is not None else " like that"))
    old.revoked_at = utcnow()
    return issue_token(session=session, rater=rater, scopes=old.scopes, expires_at=old.expires_at)
