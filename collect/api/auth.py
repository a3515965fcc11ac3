"""Who is calling: the rater behind an API token (`Authorization: Bearer TOKEN`), and the checks routes make."""

from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from collect.store import Rater
from collect.store.api_tokens import token_owner

bearer = HTTPBearer(auto_error=False)


def _owner(session, credentials: HTTPAuthorizationCredentials | None) -> tuple[Rater, list[str]]:
    rater, scopes = token_owner(session=session, token=credentials.credentials) if credentials else (None, None)
    if rater is None:
        raise HTTPException(401, "missing, unknown, revoked or expired API token (Authorization: Bearer TOKEN)")
    return rater, scopes


def token_rater(session, credentials: HTTPAuthorizationCredentials | None) -> Rater:
    """The active rater holding the request's live token, whatever its scopes; 401 without one."""
    return _owner(session, credentials)[0]


def require_scope(session, credentials: HTTPAuthorizationCredentials | None, scope: str) -> Rater:
    """The active rater whose live token has `scope` (within their current role); 401 without one, else 403."""
    rater, scopes = _owner(session, credentials)
    if scope not in scopes:
        raise HTTPException(403, f"this needs a token with the '{scope}' scope (this one has: {', '.join(scopes)})")
    return rater
