"""`plumb collect serve`: the rater web app, the REST API and its docs, in one process.

The Gradio page is mounted on the collect FastAPI app (`collect.api.create_app`), so one
port serves the page (at `/`, behind a login with the store's rater accounts), the REST
API (`/api/...`) and its OpenAPI docs (`/docs`). It listens on this machine only unless
`host` says otherwise.

    plumb collect serve --config configs/collect/serve-demo.yaml
    plumb collect serve --config configs/collect/serve-demo.yaml --db campaign.sqlite --port 8080
"""

import logging
from dataclasses import dataclass, field

from plumb.config import ConfigError, parse_config, save_resolved_config

logger = logging.getLogger(__name__)


@dataclass
class ServeArguments:
    """Which campaign of which database to serve, and where to listen."""

    campaign: str = field(default="demo", metadata={"help": "Name of the campaign raters judge (pairwise)."})
    db: str | None = field(default=None, metadata={"help": "Database URL or SQLite file (default: $PLUMB_DB, "
                                                           "else collect.sqlite in the Plumb data dir)."})
    host: str = field(default="127.0.0.1", metadata={"help": "Address to listen on (default: this machine only)."})
    port: int = field(default=7860, metadata={"help": "Port of the page and the API."})
    share: bool = field(default=False, metadata={"help": "A public Gradio share link (not available when mounted "
                                                         "on the API: put a reverse proxy in front instead)."})
    output_dir: str = field(default="outputs/collect-serve",
                            metadata={"help": "Where the resolved config of this server is written."})


def config_types() -> tuple:
    """The dataclasses a `plumb collect serve` config fills."""
    return (ServeArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then serve until interrupted."""
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def build_server(args: ServeArguments):
    """The FastAPI app with the rater page mounted at `/`: what `main` serves and the tests start."""
    from collect.api import create_app
    from collect.app.interface import mount

    if args.share:
        # Gradio's share tunnel belongs to `Blocks.launch`, which a mounted app does not use.
        raise ConfigError("share: a share link is not available for the mounted app; use a reverse proxy")
    app = create_app(args.db)
    return mount(app, app.state.sessions, args.campaign)


def main(args: ServeArguments) -> None:
    """Serve the page and the API with uvicorn until interrupted."""
    import uvicorn

    app = build_server(args)
    save_resolved_config(args.output_dir, args)
    logger.info("Rater app for campaign '%s' at http://%s:%d/ (REST API at /api, docs at /docs)",
                args.campaign, args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
