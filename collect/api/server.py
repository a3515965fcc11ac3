"""The REST API raters' clients, load tests and the Gradio app talk to (FastAPI; OpenAPI at /docs).

Every request authenticates a rater by API token (`Authorization: Bearer TOKEN`, from
`plumb collect add-rater`) and runs in one transaction that commits before the response
is sent, so an acknowledged judgment is a stored one. Bad input is a 4xx with a message.

    plumb collect serve-api --db campaign.sqlite --port 8000
"""

import contextlib
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import generate_latest
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from collect.api.auth import bearer, require_scope
from collect.api.guards import RequestGuard, validation_error
from collect.api.monitoring import RequestLatency, healthz, metrics_registry
from collect.api.routes import campaign_routes, rating_routes
from collect.api.schemas import ERROR_RESPONSES
from collect.api.token_routes import token_routes
from collect.services.metrics import CONTENT_TYPE
from collect.store import StoreError, open_store
from collect.store.campaigns import CampaignError

logger = logging.getLogger(__name__)
DOCS_ASSETS = "/docs-assets"
# What /healthz answers: "database" names the dialect (sqlite, postgresql), "reason" says what failed.
HEALTHY = {
    "type": "object",
    "properties": {"status": {"const": "ok"}, "database": {"type": "string"}},
    "required": ["status", "database"],
}
SICK = {
    "type": "object",
    "properties": {"status": {"const": "unavailable"}, "reason": {"type": "string"}},
    "required": ["status", "reason"],
}


def create_app(db: str | None = None, *, metrics_public: bool = False, cors_origins: Sequence[str] = ()) -> FastAPI:
    """The FastAPI app on the database `db` (a URL or SQLite file; default: $PLUMB_DB or the data dir).

    `/metrics` needs an admin's token unless `metrics_public`; browsers on other origins get
    CORS only when listed in `cors_origins` (none by default: the page and the API are one origin).
    """
    sessions = open_store(db)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        sessions.kw["bind"].dispose()  # close pooled database connections when the server stops

    app = FastAPI(
        title="Plumb collect API", description=__doc__, version="1", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.sessions = sessions
    app.state.metrics_public = metrics_public
    app.state.metrics_registry, latency = metrics_registry(sessions)
    app.add_middleware(RequestGuard)
    # Present even with no origin listed: Gradio then leaves CORS to it, instead of answering any localhost origin.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_credentials=True,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
    )
    app.add_middleware(RequestLatency, histogram=latency)
    _keep_outermost(app, RequestLatency)
    app.exception_handler(RequestValidationError)(validation_error)
    app.exception_handler(StoreError)(_store_error)
    app.exception_handler(IntegrityError)(_conflict)
    for unavailable in (TimeoutError, OperationalError, PoolTimeout):
        app.exception_handler(unavailable)(_busy)
    app.include_router(rating_routes(), responses=ERROR_RESPONSES)
    app.include_router(campaign_routes(), responses=ERROR_RESPONSES)
    app.include_router(token_routes(), responses=ERROR_RESPONSES)
    app.add_api_route(
        "/metrics",
        _metrics,
        methods=["GET"],
        responses={
            200: {
                "description": "the Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **{code: ERROR_RESPONSES[code] for code in (401, 403, 413, 503)},
        },
        summary="Campaign progress and drift, request latency and the process, in the Prometheus text format",
    )
    app.add_api_route(
        "/healthz",
        healthz,
        methods=["GET"],
        responses={
            200: {"description": "the database answers", "content": {"application/json": {"schema": HEALTHY}}},
            503: {"description": "the database does not answer", "content": {"application/json": {"schema": SICK}}},
        },
        summary="Whether the server and its database answer (for a load balancer; no token needed)",
    )
    add_docs(app)
    return app


def add_docs(app: FastAPI) -> None:
    """Serve the OpenAPI docs at /docs with Swagger UI's files from an installed package, not a CDN (works offline)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_dir()), name="docs-assets")

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} - docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)


def swagger_ui_dir() -> Path:
    """The folder of Swagger UI's JavaScript and CSS, shipped by the PyPI package `fastapi-offline`.

    Found without importing the package, which only wraps FastAPI's own doc pages.
    """
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the API docs need the package fastapi-offline: pip install fastapi-offline")
    return Path(spec.submodule_search_locations[0]) / "static"


def _keep_outermost(app: FastAPI, middleware: type) -> None:
    """Build `app`'s middleware stack with `middleware` outermost, also around middleware added after this call."""
    # The rater page adds its login and page guards when it is mounted (collect.app.interface.mount), after this
    # app is built; latency must also count the answers they give themselves (a refused file, a throttled sign-in).
    build = app.build_middleware_stack

    def build_with_it_outermost():
        app.user_middleware.sort(key=lambda entry: entry.cls is not middleware)  # stable: the others keep their order
        return build()

    app.build_middleware_stack = build_with_it_outermost


def _metrics(request: Request, credentials=Depends(bearer)) -> PlainTextResponse:
    if not request.app.state.metrics_public:
        with request.app.state.sessions() as session:
            require_scope(session, credentials, "admin")
    # The store's figures are read in a session of their own (`StoreCollector`), after the token's has closed.
    return PlainTextResponse(generate_latest(request.app.state.metrics_registry).decode(), media_type=CONTENT_TYPE)


def _store_error(request: Request, error: StoreError) -> JSONResponse:
    status = 404 if isinstance(error, CampaignError) and str(error).startswith("no campaign") else 400
    # A message may quote what was sent: escape what UTF-8 cannot carry (a lone surrogate) rather than fail.
    detail = str(error).encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"detail": detail}, status_code=status)


def _conflict(request: Request, error: IntegrityError) -> JSONResponse:
    # A unique index refused the write: the same answer arrived twice at once.
    return JSONResponse({"detail": "conflicting concurrent submission; reload the task and try again"}, status_code=409)


def _busy(request: Request, error: Exception) -> JSONResponse:
    # SQLite's writer held past the busy timeout, PostgreSQL down or out of connections: nothing was
    # stored, and the client may retry. The driver's message stays in the log: it can name hosts and users.
    logger.warning("database unavailable for %s %s: %s", request.method, request.url.path, error)
    return JSONResponse(
        {"detail": "the database is busy or unavailable; nothing was stored, retry shortly"},
        status_code=503,
        headers={"Retry-After": "1"},
    )
