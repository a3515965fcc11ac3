"""Manage a rater's REST API tokens: issue one (scopes, expiry), list them, rotate one, revoke one or all.

plumb collect token issue alice --scopes rate --expires 2027-01-31 --db campaign.sqlite
plumb collect token list alice --db campaign.sqlite
plumb collect token rotate alice --id 3 --db campaign.sqlite
plumb collect token revoke alice --all --db campaign.sqlite

A new token is printed once; only its SHA-256 is stored. Scopes: rate (answer tasks),
review (export data), admin (manage others' tokens, read /metrics), never beyond the role.
"""

import argparse
import json
from datetime import datetime, timezone

from collect.cli import verb_parser
from collect.services.tokens import issue, listing, revoke, rotate
from collect.store import opened_store
from collect.store.api_tokens import SCOPES


def cli(argv: list[str], *, prog: str) -> int:
    """Parse the action, the rater and its options, then act on the store."""
    parser = verb_parser(prog, __doc__)
    parser.add_argument("action", choices=("issue", "list", "rotate", "revoke"))
    parser.add_argument("name", help="the rater whose tokens these are")
    parser.add_argument("--scopes", help=f"comma-separated, of {', '.join(SCOPES)} (issue; default: all the role has)")
    parser.add_argument("--expires", type=_date, help="expiry, YYYY-MM-DD or an ISO time, UTC (issue)")
    parser.add_argument("--id", type=int, help="which token (rotate, revoke)")
    parser.add_argument("--all", action="store_true", help="revoke every live token of the rater")
    args = parser.parse_args(argv)
    if args.action == "rotate" and args.id is None:
        parser.error("rotate needs --id N (see `list`)")
    if args.action == "revoke" and (args.id is None) == (not args.all):
        parser.error("revoke needs either --id N or --all")
    with opened_store(args.db) as sessions:
        if args.action == "issue":
            scopes = args.scopes.split(",") if args.scopes else None
            shown = issue(sessions, name=args.name, scopes=scopes, expires_at=args.expires)
            print(
                f"Token {shown['id']} for '{args.name}' ({', '.join(shown['scopes'])}), shown once:\n{shown['token']}"
            )
        elif args.action == "rotate":
            shown = rotate(sessions, name=args.name, token_id=args.id)
            print(f"Token {args.id} revoked; its replacement {shown['id']}, shown once:\n{shown['token']}")
        elif args.action == "revoke":
            print(f"Revoked {revoke(sessions, name=args.name, token_id=args.id)} token(s) of '{args.name}'.")
        else:
            print(json.dumps(listing(sessions, name=args.name), indent=2))
    return 0


def _date(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD or an ISO time, got {text!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.replace(tzinfo=None)
