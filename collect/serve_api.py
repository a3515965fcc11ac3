"""`plumb collect serve-api`: the REST API alone, served with uvicorn; its help is the API's own description.

With `--workers N` uvicorn runs N processes behind one port. On PostgreSQL their
assignments never collide (row locks); on SQLite every process queues for the one writer.
"""

import json
import os

from collect.api import server
from collect.cli import verb_parser
from collect.store import store_url
from collect.store.engine import SYNCHRONOUS_LEVELS

SETTINGS_ENV = "PLUMB_API_SETTINGS"  # how the settings reach worker processes, which import the app anew


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--db`, `--host`, `--port` and the API's settings, then serve until interrupted."""
    parser = verb_parser(prog, server.__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="processes serving the port (default: 1)")
    parser.add_argument(
        "--synchronous",
        choices=list(SYNCHRONOUS_LEVELS),
        default=None,
        help="SQLite commit durability: normal (default; a power loss can lose the last commits) or full",
    )
    parser.add_argument("--metrics-public", action="store_true", help="serve /metrics without an admin's token")
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        dest="cors_origins",
        help="a web origin whose pages may call the API with credentials (repeatable; default: none)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    main(
        db=args.db,
        host=args.host,
        port=args.port,
        synchronous=args.synchronous,
        workers=args.workers,
        metrics_public=args.metrics_public,
        cors_origins=args.cors_origins,
    )
    return 0


def main(
    *,
    db: str | None,
    host: str = "127.0.0.1",
    port: int = 8000,
    synchronous: str | None = None,
    workers: int = 1,
    metrics_public: bool = False,
    cors_origins: list[str] | None = None,
) -> None:
    """Serve the API with uvicorn in `workers` processes; `synchronous` is SQLite's commit durability."""
    import uvicorn

    settings = {
        "db": store_url(db, synchronous=synchronous),
        "metrics_public": metrics_public,
        "cors_origins": list(cors_origins or []),
    }
    os.environ[SETTINGS_ENV] = json.dumps(settings)
    target = f"{__name__}:app_from_settings"
    uvicorn.run(target, factory=True, host=host, port=port, workers=workers, log_level="warning")


def app_from_settings():
    """The API app from the settings `main` left in the environment (each worker process calls this)."""
    settings = json.loads(os.environ[SETTINGS_ENV])
    return server.create_app(settings.pop("db"), **settings)
