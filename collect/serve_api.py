"""`plumb collect serve-api`: the REST API alone, served with uvicorn; its help is the API's own description."""

from collect.api import server
from collect.cli import verb_parser


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--db`, `--host` and `--port`, then serve until interrupted."""
    parser = verb_parser(prog, server.__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    main(db=args.db, host=args.host, port=args.port)
    return 0


def main(*, db: str | None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    uvicorn.run(server.create_app(db), host=host, port=port, log_level="warning")
