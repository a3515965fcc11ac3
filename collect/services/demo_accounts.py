"""The demo accounts of `plumb collect serve` (`demo_raters`): one per role, with passwords everyone can read."""

from collect.store import CampaignError, create_rater, rater_by_name
from collect.store.raters import RaterError, authenticate

# Demo accounts: one per role, with passwords everyone can read, so only for a server on this machine.
DEMO_RATERS = (("alice", "rater"), ("bob", "rater"), ("rita", "reviewer"), ("adam", "admin"))
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def demo_password(name: str) -> str:
    """The published password of a demo account."""
    return f"{name}-demo"


def refuse_demo_on_public_host(*, host: str, demo_raters: bool) -> None:
    """`CampaignError` when demo accounts are asked for on an address beyond this machine (checked before set-up)."""
    if demo_raters and host not in LOCAL_HOSTS:
        raise CampaignError(
            f"demo_raters: the demo accounts have published passwords; serve them on 127.0.0.1, not {host}"
        )


def refuse_published_passwords(sessions, *, host: str) -> None:
    """`CampaignError` naming the accounts that still have their published demo password, when `host` is public."""
    if host in LOCAL_HOSTS:
        return
    with sessions() as session:
        open_to_all = [
            name for name, _ in DEMO_RATERS if authenticate(session=session, name=name, password=demo_password(name))
        ]
    if open_to_all:
        raise CampaignError(
            f"host {host}: account(s) {', '.join(open_to_all)} still have their published demo password (NAME-demo); "
            "change them in the Admin tab or deactivate them, or serve on 127.0.0.1"
        )


def ensure_demo_raters(sessions, *, host: str) -> list[tuple[str, str, str]]:
    """Add the demo accounts that are missing; returns (name, role, password) of each, for the start-up message."""
    refuse_demo_on_public_host(host=host, demo_raters=True)
    with sessions.begin() as session:
        for name, role in DEMO_RATERS:
            try:
                rater_by_name(session=session, name=name)
            except RaterError:
                create_rater(session=session, name=name, role=role, password=demo_password(name))
    return [(name, role, demo_password(name)) for name, role in DEMO_RATERS]
