"""What Prometheus and a load balancer read: the app's metrics registry, request latency, and `/healthz`.

One registry per app (not prometheus_client's global one), so two apps in one process,
as in the tests, never share or double-register a series. It holds the store's figures
(`collect.services.metrics.StoreCollector`, read at scrape time), this process's request
latency and its CPU, memory and open files (prometheus_client's process and platform
collectors). Latency is per process: with several replicas, Prometheus scrapes each and
sums; the store's figures are the same whichever replica answers.
"""

import logging
import time

from fastapi import Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Histogram, PlatformCollector, ProcessCollector
from sqlalchemy import select

from collect.services.metrics import StoreCollector
from collect.store import Campaign
from collect.store.engine import sqlite_file

logger = logging.getLogger(__name__)
# Seconds until a response starts: an API call takes milliseconds, a Gradio page load or a busy database seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# The route label of a request no route took (a 404, or one refused before routing): one series, not one per path.
UNROUTED = "<unrouted>"


def metrics_registry(sessions) -> tuple[CollectorRegistry, Histogram]:
    """(a registry with the store's, the process's and the platform's collectors, the request latency histogram
    registered in it)."""
    # auto_describe off: describing the store collector would read the database when the app is built.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(sessions))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    latency = Histogram(
        "plumb_http_request_duration_seconds",
        "Seconds from a request's arrival to the start of its response, by route template, method and status.",
        ["route", "method", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    return registry, latency


def route_template(scope) -> str:
    """The path template of the route that took the request (`/api/campaigns/{campaign}/next`), never the raw path,
    so a series stands for a route and not for every campaign name or file a client asks for."""
    route = scope.get("route")
    if route is None:
        return UNROUTED
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template or "/"  # the page mounted at the root has the empty path


class RequestLatency:
    """ASGI middleware: observe each HTTP request's time to its response start in `histogram`.

    Time to the start, not to the end: Gradio streams events for as long as a page is open, and that stream's
    length says nothing about how quickly the server answered. A plain ASGI middleware, so streams pass untouched.
    """

    def __init__(self, app, histogram: Histogram):
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        observed = False

        def observe(status: int) -> None:
            nonlocal observed
            observed = True
            labels = (route_template(scope), scope["method"], str(status))
            self.histogram.labels(*labels).observe(time.perf_counter() - start)

        async def timed_send(message):
            if message["type"] == "http.response.start" and not observed:
                observe(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        except BaseException:
            if not observed:  # the server's error handler answers 500 outside this middleware
                observe(500)
            raise


def healthz(request: Request) -> JSONResponse:
    """200 {"status": "ok"} when the database answers a trivial query, else 503 with the reason."""
    sessions = request.app.state.sessions
    engine = sessions.kw["bind"]
    path = sqlite_file(engine.url.render_as_string(hide_password=False))
    # A SQLite file deleted under a running server still answers through the open connections, and every
    # write after that is lost at the next restart: the file itself must be there.
    if path is not None and not path.is_file():
        logger.error("healthz: the SQLite database file %s is gone", path)
        return _unhealthy("the SQLite database file is gone")
    try:
        with sessions() as session:
            session.execute(select(Campaign.id).limit(1)).all()
    except Exception as error:
        # The driver's message stays in the log: it can name hosts and users.
        logger.warning("healthz: the database did not answer: %s", error)
        return _unhealthy(f"the database did not answer ({type(error).__name__})")
    return JSONResponse({"status": "ok", "database": engine.dialect.name})


def _unhealthy(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503, headers={"Retry-After": "5"})
