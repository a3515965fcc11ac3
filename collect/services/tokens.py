"""Token management as the command line, the Admin tab and REST do it: by rater name, an admin's act when `by` is
given, each in one transaction. A new token is returned once, with its id, scopes and expiry."""

from collect.store import rater_by_name, require_role
from collect.store.api_tokens import issue_token, revoke_tokens, rotate_token, tokens_of
from collect.store.models import ApiToken, utcnow


def shown(row: ApiToken, token: str) -> dict:
    """A token just issued, as it is shown once: id, the token, scopes, expiry."""
    return {"id": row.id, "token": token, "scopes": row.scopes, "expires_at": _iso(row.expires_at)}


def _iso(moment) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def _acting(session, by: str | None):
    return require_role(session=session, name=by, roles=("admin",), what="manage tokens") if by else None


def issue(sessions, *, name: str, scopes=None, expires_at=None, by: str | None = None) -> dict:
    """A new token for rater `name` (scopes within their role, an optional expiry in UTC); shown once."""
    with sessions.begin() as session:
        admin = _acting(session, by)
        row, token = issue_token(
            session=session,
            rater=rater_by_name(session=session, name=name),
            scopes=scopes,
            expires_at=expires_at,
            by=admin,
        )
        return shown(row, token)


def rotate(sessions, *, name: str, token_id: int, by: str | None = None) -> dict:
    """Revoke rater `name`'s token `token_id` and issue its replacement with the same scopes and expiry."""
    with sessions.begin() as session:
        _acting(session, by)
        row, token = rotate_token(session=session, rater=rater_by_name(session=session, name=name), token_id=token_id)
        return shown(row, token)


def revoke(sessions, *, name: str, token_id: int | None = None, by: str | None = None) -> int:
    """Revoke one token of rater `name` (`token_id`) or, with None, every live one; returns how many."""
    with sessions.begin() as session:
        admin = _acting(session, by)
        rater = rater_by_name(session=session, name=name)
        return revoke_tokens(session=session, rater=rater, token_id=token_id, by=admin)


def listing(sessions, *, name: str) -> list[dict]:
    """Rater `name`'s tokens, newest first: id, scopes, created, expires, revoked, and whether live now."""
    now = utcnow()
    with sessions() as session:
        rows = tokens_of(session=session, rater=rater_by_name(session=session, name=name))
        return [
            {
                "id": row.id,
                "scopes": row.scopes,
                "created_at": _iso(row.created_at),
                "expires_at": _iso(row.expires_at),
                "revoked_at": _iso(row.revoked_at),
                "live": row.revoked_at is None and (row.expires_at is None or row.expires_at > now),
            }
            for row in rows
        ]
