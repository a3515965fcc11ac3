"""Add a rater (or a reviewer or admin) and print their API token, which is shown only once.

plumb collect add-rater alice --role rater --db campaign.sqlite
echo "$PASSWORD" | plumb collect add-rater bob --role admin --password-stdin
"""

import sys

from collect.cli import verb_parser
from collect.store import ROLES, create_rater, opened_store


def cli(argv: list[str], *, prog: str) -> int:
    """Parse the rater's name, role and password source, then add them."""
    parser = verb_parser(prog, __doc__)
    parser.add_argument("name", help="the rater's unique name")
    parser.add_argument("--role", choices=ROLES, default="rater", help="what they may do (default: rater)")
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read a password for the web app from standard input (stored as an argon2 hash)",
    )
    args = parser.parse_args(argv)
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
    token = main(args.name, role=args.role, password=password, db=args.db)
    print(f"Added {args.role} '{args.name}'. API token (shown once, keep it secret):\n{token}")
    return 0


def main(name: str, *, role: str = "rater", password: str | None = None, db: str | None = None) -> str:
    """Add the rater in one transaction; returns their API token."""
    with opened_store(db) as sessions, sessions.begin() as session:
        _, token = create_rater(session=session, name=name, role=role, password=password)
    return token
