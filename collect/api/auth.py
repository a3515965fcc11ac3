"""Who is calling: the rater behind an API token (`Authorization: Bearer TOKEN`), and the checks routes make."""

from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from collect.store import Rater, rater_by_token

bearer = HTTPBearer(auto_error=False)


def token_rater(session, credentials: HTTPAuthorizationCredentials | None) -> Rater:
    """The active rater holding the request's token; 401 when there is none or it is unknown."""
    rater = rater_by_token(session=session, token=credentials.credentials) if credentials else None
    if rater is None:
        raise HTTPException(401, "missing or unknown API token (Authorization: Bearer TOKEN)")
    return rater


def require_admin_token(session, credentials: HTTPAuthorizationCredentials | None) -> Rater:
    """The admin holding the request's token; 401 without a token, 403 for anyone else."""
    rater = token_rater(session, credentials)
    if rater.role != "admin":
        raise HTTPException(403, "this needs an admin's API token")
    return rater
