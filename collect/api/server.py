"""The REST API raters' clients, load tests and the Gradio app talk to (FastAPI; OpenAPI at /docs).

Every request authenticates a rater by API token (`Authorization: Bearer TOKEN`, from
`plumb collect add-rater`) and runs in one transaction that commits before the response
is sent, so an acknowledged judgment is a stored one. Bad input is a 4xx with a message.

    plumb collect serve-api --db campaign.sqlite --port 8000
"""

import contextlib

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import IntegrityError

from collect.api.guards import RequestGuard, validation_error
from collect.api.routes import campaign_routes, rating_routes
from collect.services.metrics import prometheus_text
from collect.store import StoreError, open_store
from collect.store.campaigns import CampaignError


def create_app(db: str | None = None) -> FastAPI:
    """The FastAPI app on the database `db` (a URL or SQLite file; default: $PLUMB_DB or the data dir)."""
    sessions = open_store(db)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        sessions.kw["bind"].dispose()  # close pooled database connections when the server stops

    app = FastAPI(title="Plumb collect API", description=__doc__, version="1", lifespan=lifespan)
    app.state.sessions = sessions
    app.add_middleware(RequestGuard)
    app.exception_handler(RequestValidationError)(validation_error)
    app.exception_handler(StoreError)(_store_error)
    app.exception_handler(IntegrityError)(_conflict)
    app.exception_handler(TimeoutError)(_busy)
    app.include_router(rating_routes())
    app.include_router(campaign_routes())
    app.add_api_route(
        "/metrics",
        _metrics,
        methods=["GET"],
        response_class=PlainTextResponse,
        summary="Campaign progress in the Prometheus text format",
    )
    return app


def _metrics(request: Request) -> str:
    with request.app.state.sessions() as session:
        return prometheus_text(session)


def _store_error(request: Request, error: StoreError) -> JSONResponse:
    status = 404 if isinstance(error, CampaignError) and str(error).startswith("no campaign") else 400
    # A message may quote what was sent: escape what UTF-8 cannot carry (a lone surrogate) rather than fail.
    detail = str(error).encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"detail": detail}, status_code=status)


def _conflict(request: Request, error: IntegrityError) -> JSONResponse:
    # A unique index refused the write: the same answer arrived twice at once.
    return JSONResponse({"detail": "conflicting concurrent submission; reload the task and try again"}, status_code=409)


def _busy(request: Request, error: TimeoutError) -> JSONResponse:
    # SQLite's single writer was held for longer than the busy timeout: the client may retry.
    return JSONResponse(
        {"detail": f"the database is busy ({error}); retry shortly"}, status_code=503, headers={"Retry-After": "1"}
    )
