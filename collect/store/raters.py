"""Raters: create them, check their passwords (argon2id), find them by API token, and manage them.

A password is hashed with argon2-cffi. A new rater gets an API token with every scope their
role allows (`collect.store.api_tokens`: shown once, stored as its SHA-256, revocable). A deactivated rater
keeps their judgments but can no longer sign in, use their token, or act in an open page.
A simulated rater (kind `simulated`, see `collect.simulate`) has no password, so it never
signs in to the page; it answers through the scheduler functions directly.
"""

import functools
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from collect.store.api_tokens import issue_token, token_owner
from collect.store.audit import record_event
from collect.store.limits import is_storable
from collect.store.models import RATER_KINDS, ROLES, Rater, StoreError


class RaterError(StoreError):
    """A rater cannot be created or found as asked; the message says why."""


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def create_rater(
    *, session: Session, name: str, role: str = "rater", password: str | None = None, kind: str = "human"
) -> tuple[Rater, str]:
    """Add a rater of `kind` (one of RATER_KINDS); returns (rater, API token). The token is not stored and cannot
    be shown again."""
    _check_role(role)
    _check_kind(kind, password)
    if not name.strip():
        raise RaterError("a rater needs a name")
    if session.scalar(select(Rater).where(Rater.name == name)) is not None:
        raise RaterError(f"a rater named '{name}' already exists")
    rater = Rater(
        name=name, role=role, kind=kind, password_hash=_password_hash(password) if password is not None else None
    )
    session.add(rater)
    session.flush()
    record_event(session=session, action="rater.created", rater=rater, role=role, kind=kind)
    _, token = issue_token(session=session, rater=rater)
    return rater, token


def rater_by_token(*, session: Session, token: str) -> Rater | None:
    """The active rater holding this live API token (not revoked, not expired), or None."""
    return token_owner(session=session, token=token)[0]


def rater_by_name(*, session: Session, name: str) -> Rater:
    """The active rater called `name`; `RaterError` when there is none or they were deactivated."""
    rater = _any_rater(session, name)
    if not rater.active:
        # A page opened before the deactivation still sends the old login: every handler looks the rater up here.
        raise RaterError(f"rater '{name}' is deactivated")
    return rater


def _any_rater(session: Session, name: str) -> Rater:
    rater = session.scalar(select(Rater).where(Rater.name == name))
    if rater is None:
        raise RaterError(f"no rater named '{name}' (add one with `plumb collect add-rater NAME`)")
    return rater


def authenticate(*, session: Session, name: str, password: str) -> Rater | None:
    """The active rater `name` when `password` matches its argon2 hash, else None."""
    from argon2.exceptions import VerificationError

    typed = is_storable(name) and is_storable(password)  # text argon2 and the database can take at all
    rater = session.scalar(select(Rater).where(Rater.name == name, Rater.active.is_(True))) if typed else None
    known = rater is not None and rater.password_hash is not None
    try:
        # An unknown name costs the same argon2 work as a known one, so timing does not tell which names exist.
        _hasher().verify(rater.password_hash if known else _stand_in_hash(), password if typed else "")
    except VerificationError:
        return None
    return rater if known else None


@functools.cache
def _stand_in_hash() -> str:
    """An argon2 hash with the same parameters as a real one, of a password nobody can type."""
    return _hasher().hash(secrets.token_urlsafe(32))


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise RaterError(f"unknown role '{role}' (choose one of: {', '.join(ROLES)})")


def _check_kind(kind: str, password: str | None) -> None:
    if kind not in RATER_KINDS:
        raise RaterError(f"unknown rater kind '{kind}' (choose one of: {', '.join(RATER_KINDS)})")
    if kind in ("simulated", "imported") and password is not None:
        raise RaterError(f"a rater of kind {kind} has no password: it never signs in to the page")


def _password_hash(password: str) -> str:
    if not password or not password.strip():
        raise RaterError("a password cannot be empty")
    return _hasher().hash(password)


def all_raters(*, session: Session) -> list[Rater]:
    """Every rater, active or not, by name."""
    return list(session.scalars(select(Rater).order_by(Rater.name)))


def set_role(*, session: Session, name: str, role: str, by: Rater | None = None) -> Rater:
    """Give rater `name` the role `role`; `by` (the admin acting) cannot change their own role."""
    _check_role(role)
    rater = _any_rater(session, name)
    _not_yourself(rater, by, "change your own role")
    if rater.role != role:
        record_event(session=session, action="rater.role_changed", rater=by, name=name, old=rater.role, new=role)
        rater.role = role
    return rater


def set_active(*, session: Session, name: str, active: bool, by: Rater | None = None) -> Rater:
    """Deactivate (they can no longer sign in) or reactivate rater `name`; nobody deactivates themselves."""
    rater = _any_rater(session, name)
    _not_yourself(rater, by, "deactivate yourself")
    if rater.active != active:
        rater.active = active
        record_event(
            session=session, action="rater.reactivated" if active else "rater.deactivated", rater=by, name=name
        )
    return rater


def set_password(*, session: Session, name: str, password: str, by: Rater | None = None) -> Rater:
    """Replace rater `name`'s web password (argon2id); an empty password is refused."""
    rater = _any_rater(session, name)
    _check_kind(rater.kind, password)
    rater.password_hash = _password_hash(password)
    record_event(session=session, action="rater.password_reset", rater=by, name=name)
    return rater


def _not_yourself(rater: Rater, by: Rater | None, what: str) -> None:
    # An admin who demotes or deactivates their own account could leave the campaign with no admin at all.
    if by is not None and by.id == rater.id:
        raise RaterError(f"you cannot {what}: ask another admin")


def require_role(*, session: Session, name: str, roles: tuple[str, ...], what: str) -> Rater:
    """Rater `name` when their role is one of `roles`; otherwise `PermissionError` saying whom `what` is for."""
    rater = rater_by_name(session=session, name=name)
    if rater.role not in roles:
        raise PermissionError(
            f"{what} is for {' and '.join(role + 's' for role in roles)}" + (" only" if len(roles) == 1 else "")
        )
    return rater
