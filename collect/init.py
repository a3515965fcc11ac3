"""Create or upgrade the preference database to the newest schema (Alembic migrations shipped with Plumb).

plumb collect init --db campaign.sqlite
plumb collect init --db postgresql://plumb@localhost/plumb
"""

import logging

from collect.cli import verb_parser
from collect.store import make_engine, upgrade

logger = logging.getLogger(__name__)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--db` and initialize the database."""
    parser = verb_parser(prog, __doc__)
    args = parser.parse_args(argv)
    main(args.db)
    return 0


def main(db: str | None) -> str:
    """Migrate the database at `db` to the newest schema; returns the schema revision."""
    engine = make_engine(db)
    try:
        revision = upgrade(engine)
    finally:
        engine.dispose()
    logger.info("Database %s is at schema revision %s", engine.url.render_as_string(hide_password=True), revision)
    return revision
