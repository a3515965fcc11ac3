"""Raters: create them, check their passwords (argon2id) and find them by API token.

A password is hashed with argon2-cffi. An API token is 32 random bytes, shown once and
stored as its SHA-256: a token carries enough entropy that a fast hash is safe, and
every REST call can check it without argon2's deliberate slowness.
"""

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect.store.audit import record_event
from collect.store.models import StoreError, ROLES, Rater


class RaterError(StoreError):
    """A rater cannot be created or found as asked; the message says why."""


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def token_hash(token: str) -> str:
    """The stored form of an API token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_rater(*, session: Session, name: str, role: str = "rater", password: str | None = None) -> tuple[Rater, str]:
    """Add a rater; returns (rater, API token). The token is not stored and cannot be shown again."""
    if role not in ROLES:
        raise RaterError(f"unknown role '{role}' (choose one of: {', '.join(ROLES)})")
    if not name.strip():
        raise RaterError("a rater needs a name")
    if session.scalar(select(Rater).where(Rater.name == name)) is not None:
        raise RaterError(f"a rater named '{name}' already exists")
    token = secrets.token_urlsafe(32)
    rater = Rater(name=name, role=role, token_hash=token_hash(token),
                  password_hash=_hasher().hash(password) if password else None)
    session.add(rater)
    session.flush()
    record_event(session=session, action="rater.created", rater=rater, role=role)
    return rater, token


def rater_by_token(*, session: Session, token: str) -> Rater | None:
    """The active rater holding this API token, or None."""
    return session.scalar(select(Rater).where(Rater.token_hash == token_hash(token), Rater.active.is_(True)))


def rater_by_name(*, session: Session, name: str) -> Rater:
    """The rater called `name`; `RaterError` when there is none."""
    rater = session.scalar(select(Rater).where(Rater.name == name))
    if rater is None:
        raise RaterError(f"no rater named '{name}' (add one with `plumb collect add-rater NAME`)")
    return rater


def authenticate(*, session: Session, name: str, password: str) -> Rater | None:
    """The active rater `name` when `password` matches its argon2 hash, else None."""
    from argon2.exceptions import VerificationError

    rater = session.scalar(select(Rater).where(Rater.name == name, Rater.active.is_(True)))
    if rater is None or rater.password_hash is None:
        return None
    try:
        _hasher().verify(rater.password_hash, password)
    except VerificationError:
        return None
    return rater
