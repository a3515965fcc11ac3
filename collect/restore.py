"""Restore a backup written by `plumb collect backup` into a database of the same kind (SQLite or PostgreSQL).

A database that holds any rows is refused unless `--force` is given; an empty or just
initialized one is fine. A restore is all or nothing: a SQLite backup is checked in a
temporary file first, a PostgreSQL one goes in with `pg_restore --single-transaction`.
Stop the servers on that database first.

    plumb collect restore --input backups/campaign-2026-05-01.sqlite --db restored.sqlite
    plumb collect restore --input backups/plumb-2026-05-01.dump --db postgresql://plumb@dbhost/plumb --force
"""

import json

from collect.cli import verb_parser
from collect.services.backup import restore_store


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--input`, `--db` and `--force`, then restore."""
    parser = verb_parser(prog, __doc__)
    parser.add_argument("--input", required=True, help="the backup file (from `plumb collect backup`)")
    parser.add_argument("--force", action="store_true", help="replace a database that already holds rows")
    args = parser.parse_args(argv)
    print(json.dumps(main(args.input, db=args.db, force=args.force)))
    return 0


def main(backup: str, *, db: str | None, force: bool = False) -> dict:
    """Restore `backup` into the database `db` (replacing its rows only when `force`); returns a summary."""
    return restore_store(backup, db, force=force)
