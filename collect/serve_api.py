"""`plumb collect serve-api`: the REST API alone, served with uvicorn; its help is the API's own description."""

from collect.api import server
from collect.cli import verb_parser
from collect.store import store_url
from collect.store.engine import SYNCHRONOUS_LEVELS


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--db`, `--host` and `--port`, then serve until interrupted."""
    parser = verb_parser(prog, server.__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--synchronous",
        choices=list(SYNCHRONOUS_LEVELS),
        default=None,
        help="SQLite commit durability: normal (default; a power loss can lose the last commits) or full",
    )
    args = parser.parse_args(argv)
    main(db=args.db, host=args.host, port=args.port, synchronous=args.synchronous)
    return 0


def main(*, db: str | None, host: str = "127.0.0.1", port: int = 8000, synchronous: str | None = None) -> None:
    """Serve the API with uvicorn; `synchronous` is SQLite's commit durability (normal or full)."""
    import uvicorn

    uvicorn.run(server.create_app(store_url(db, synchronous=synchronous)), host=host, port=port, log_level="warning")
