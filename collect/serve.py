"""`plumb collect serve`: the rater web app, the REST API and its docs, in one process.

The Gradio page is mounted on the collect FastAPI app (`collect.api.server.create_app`), so one
port serves the page (at `/`, behind a login with the store's rater accounts), the REST
API (`/api/...`), its OpenAPI docs (`/docs`) and `/metrics`. It listens on this machine
only unless `host` says otherwise. The set-up keys (`init_db`, `campaign_file`,
`demo_raters`, `generate_first`, `generate_rest`) let one command start a demo from nothing.

    plumb collect serve --config configs/collect/demo.yaml        # what `make demo` runs
    plumb collect serve --config configs/collect/serve.yaml --db campaign.sqlite --port 8080
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from plumb.config import ConfigError, parse_config, save_resolved_config

logger = logging.getLogger(__name__)


@dataclass
class ServeArguments:
    """Which campaign of which database to serve, and where to listen."""

    campaign: str = field(default="demo", metadata={"help": "Name of the campaign raters judge (pairwise)."})
    db: str | None = field(
        default=None,
        metadata={
            "help": "Database URL or SQLite file (default: $PLUMB_DB, else collect.sqlite in the Plumb data dir)."
        },
    )
    synchronous: str | None = field(
        default=None,
        metadata={
            "help": "SQLite commit durability: `normal` (the default: an application crash loses nothing, a power "
            "loss can lose the last commits) or `full` (an fsync at every commit). PostgreSQL: the server's own."
        },
    )
    host: str = field(default="127.0.0.1", metadata={"help": "Address to listen on (default: this machine only)."})
    port: int = field(default=7860, metadata={"help": "Port of the page and the API."})
    share: bool = field(
        default=False,
        metadata={
            "help": "A public Gradio share link (not available when mounted "
            "on the API: put a reverse proxy in front instead)."
        },
    )
    output_dir: str = field(
        default="outputs/collect-serve", metadata={"help": "Where the resolved config of this server is written."}
    )
    init_db: bool = field(
        default=False,
        metadata={
            "help": "Create or upgrade the database first (`plumb collect "
            "init`); a SQLite file's folder is created too."
        },
    )
    campaign_file: str | None = field(
        default=None,
        metadata={
            "help": "A campaign YAML to import, with its prompts, when the store has no campaign named `campaign`."
        },
    )
    demo_raters: bool = field(
        default=False,
        metadata={
            "help": "Add the demo accounts (alice, bob: raters; rita: reviewer; adam: admin; password NAME-demo) and "
            "print them; only on 127.0.0.1."
        },
    )
    generate_first: int = field(
        default=0,
        metadata={
            "help": "Before serving, have every policy answer this many prompts that have no candidates yet (0: none)."
        },
    )
    generate_rest: bool = field(
        default=False,
        metadata={"help": "While serving, answer the remaining prompts in the background; their tasks join the pool."},
    )
    generation_batch_size: int = field(default=8, metadata={"help": "Prompts per generate() call."})
    session_idle_minutes: float = field(
        default=720.0, metadata={"help": "A page session ends after this many minutes without use (default: 12 h)."}
    )
    session_max_hours: float = field(
        default=168.0, metadata={"help": "A page session ends this many hours after sign-in, used or not (7 days)."}
    )
    metrics_public: bool = field(
        default=False,
        metadata={"help": "Serve /metrics to anyone (e.g. a Prometheus on a private network); else an admin's token."},
    )
    cors_origins: list[str] = field(
        default_factory=list,
        metadata={"help": "Other web origins whose pages may call the API with credentials (default: none)."},
    )

    def __post_init__(self):
        if min(self.session_idle_minutes, self.session_max_hours) <= 0:
            raise ValueError("session_idle_minutes and session_max_hours must be positive")
        if self.synchronous is not None:
            from collect.store.engine import check_synchronous

            check_synchronous(self.synchronous)  # a ValueError: the config parser names the file

    def store_url(self) -> str | None:
        """`db` with the `synchronous` setting on it (the URL carries it to every store this server opens)."""
        from collect.store import store_url

        return store_url(self.db, synchronous=self.synchronous)


def config_types() -> tuple:
    """The dataclasses a `plumb collect serve` config fills."""
    return (ServeArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then serve until interrupted."""
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def build_server(args: ServeArguments, *, models=None):
    """The FastAPI app with the rater page mounted at `/` (after the database and campaign set-up the keys ask for).

    `models` (a `plumb.generation.LoadedModels`) is shared by the arena and the background generation.
    """
    from collect.api.server import create_app
    from collect.app.interface import mount
    from collect.services.campaign_import import ensure_campaign
    from collect.store.web_sessions import SessionLimits

    if args.share:
        # Gradio's share tunnel belongs to `Blocks.launch`, which a mounted app does not use.
        raise ConfigError("share: a share link is not available for the mounted app; use a reverse proxy")
    db = args.store_url()
    if args.init_db:
        _init_db(db)
    app = create_app(db, metrics_public=args.metrics_public, cors_origins=args.cors_origins)
    ensure_campaign(app.state.sessions, campaign=args.campaign, campaign_file=args.campaign_file, db=db)
    limits = SessionLimits(
        idle=timedelta(minutes=args.session_idle_minutes), absolute=timedelta(hours=args.session_max_hours)
    )
    return mount(
        app, app.state.sessions, args.campaign, output_dir=args.output_dir, models=models, session_limits=limits
    )


def _init_db(db: str | None) -> None:
    from pathlib import Path

    from collect import init
    from collect.store import normalize_url

    url = normalize_url(db)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    init.main(db)


def _check_port_free(host: str, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As uvicorn binds: a port left in TIME_WAIT by a server that just stopped is free to use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ConfigError(
                f"port: cannot listen on {host}:{port} ({error.strerror}); choose another with --port"
            ) from None


def main(args: ServeArguments) -> None:
    """Set up what the config asks, then serve the page and the API with uvicorn until interrupted."""
    import uvicorn

    from collect.services.demo_accounts import (
        ensure_demo_raters,
        refuse_demo_on_public_host,
        refuse_published_passwords,
    )
    from collect.services.generation import CandidateFiller
    from plumb.generation import LoadedModels

    _check_port_free(args.host, args.port)  # before minutes of set-up, not after
    refuse_demo_on_public_host(host=args.host, demo_raters=args.demo_raters)  # before the database is made
    models = LoadedModels()
    app = build_server(args, models=models)
    sessions = app.state.sessions
    refuse_published_passwords(sessions, host=args.host)
    logins = ensure_demo_raters(sessions, host=args.host) if args.demo_raters else []
    if args.generate_first or args.generate_rest:
        filler = CandidateFiller(sessions, args.campaign, batch_size=args.generation_batch_size, models=models)
        if args.generate_first:
            filler.fill_first(args.generate_first)
        if args.generate_rest:
            filler.fill_in_background(chunk=args.generation_batch_size)
    save_resolved_config(args.output_dir, args)
    url = f"http://{'[::1]' if args.host == '::1' else args.host}:{args.port}/"
    lines = [f"Rater app for campaign '{args.campaign}': {url} (REST API at {url}api, docs at {url}docs)"]
    lines += [f"  log in as {name:<6} password {password:<12} ({role})" for name, role, password in logins]
    print("\n".join(lines), flush=True)
    # Browsers keep Gradio's event streams open: a bounded graceful shutdown lets Ctrl-C stop the server.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)
