"""The REST routes for API tokens: rotate or revoke the token in hand; an admin issues, lists and revokes others'."""

from datetime import datetime, timezone
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from collect.api.auth import bearer, require_scope, token_rater
from collect.services import tokens
from collect.store.api_tokens import SCOPES, revoke_tokens, rotate_token


class NewToken(BaseModel):
    """A token just issued: shown this once, never again."""

    id: int
    token: str
    scopes: list[str]
    expires_at: str | None = Field(None, description="UTC, ISO 8601 with a Z; null: never")


class TokenInfo(BaseModel):
    """A token as listed: never the token itself."""

    id: int
    scopes: list[str]
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    live: bool


class TokenRequest(BaseModel):
    """What an admin asks for: scopes (default: all the rater's role allows) and an optional expiry."""

    model_config = ConfigDict(extra="forbid")
    scopes: list[Literal[SCOPES]] | None = Field(None, min_length=1, max_length=len(SCOPES))
    expires_at: AwareDatetime | None = None


def _naive_utc(moment: datetime | None) -> datetime | None:
    # The store keeps UTC without an offset, as every other time it stores.
    return None if moment is None else moment.astimezone(timezone.utc).replace(tzinfo=None)


def token_routes() -> APIRouter:
    """Rotate or revoke your own token; as an admin (the `admin` scope), issue, list and revoke a rater's."""
    router = APIRouter(prefix="/api")

    @router.post("/tokens/rotate", response_model=NewToken, status_code=201)
    def rotate(request: Request, credentials=Depends(bearer)):
        """Replace the token you call with by a new one (same scopes and expiry); the old one stops working now."""
        with request.app.state.sessions.begin() as session:
            rater = token_rater(session, credentials)
            row, token = rotate_token(session=session, rater=rater, token=credentials.credentials)
            return tokens.shown(row, token)

    @router.post("/tokens/revoke")
    def revoke(request: Request, credentials=Depends(bearer)) -> dict:
        """Revoke the token you call with."""
        with request.app.state.sessions.begin() as session:
            rater = token_rater(session, credentials)
            return {"revoked": revoke_tokens(session=session, rater=rater, token=credentials.credentials)}

    @router.post("/raters/{name}/tokens", response_model=NewToken, status_code=201)
    def issue(name: str, body: TokenRequest, request: Request, credentials=Depends(bearer)):
        """Issue a token for rater `name` (admins)."""
        sessions = request.app.state.sessions
        with sessions() as session:
            admin = require_scope(session, credentials, "admin").name
        return tokens.issue(sessions, name=name, scopes=body.scopes, expires_at=_naive_utc(body.expires_at), by=admin)

    @router.get("/raters/{name}/tokens", response_model=list[TokenInfo])
    def listing(name: str, request: Request, credentials=Depends(bearer)):
        """Rater `name`'s tokens, newest first, without the tokens themselves (admins)."""
        sessions = request.app.state.sessions
        with sessions() as session:
            require_scope(session, credentials, "admin")
        return tokens.listing(sessions, name=name)

    @router.post("/raters/{name}/tokens/revoke")
    def revoke_all(name: str, request: Request, credentials=Depends(bearer)) -> dict:
        """Revoke every live token of rater `name` (admins)."""
        sessions = request.app.state.sessions
        with sessions() as session:
            admin = require_scope(session, credentials, "admin").name
        return {"revoked": tokens.revoke(sessions, name=name, by=admin)}

    return router
