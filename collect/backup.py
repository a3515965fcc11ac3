"""Back up the preference database while raters keep judging: a SQLite file through SQLite's online backup API,
PostgreSQL with `pg_dump` (custom format). The backup file is replaced whole, never half-written.

    plumb collect backup --db campaign.sqlite --output backups/campaign-2026-05-01.sqlite
    plumb collect backup --db postgresql://plumb@dbhost/plumb --output backups/plumb-2026-05-01.dump

`plumb collect restore` puts a backup back.
"""

import json

from collect.cli import verb_parser
from collect.services.backup import backup_store


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--db` and `--output`, then back up."""
    parser = verb_parser(prog, __doc__)
    parser.add_argument("--output", required=True, help="the backup file to write (replaced when it exists)")
    args = parser.parse_args(argv)
    print(json.dumps(main(db=args.db, output=args.output)))
    return 0


def main(*, db: str | None, output: str) -> dict:
    """Back up the database `db` to `output`; returns what was written."""
    return backup_store(db, output)
