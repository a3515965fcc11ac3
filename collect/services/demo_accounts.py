"""The demo accounts of `plumb collect serve` (`demo_raters`): one per role, with passwords everyone can read."""

from collect.store import CampaignError, create_rater, rater_by_name
from collect.store.raters import RaterError

# Demo accounts: one per role, with passwords everyone can read, so only for a server on this machine.
DEMO_RATERS = (("alice", "rater"), ("bob", "rater"), ("rita", "reviewer"), ("adam", "admin"))
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def demo_password(name: str) -> str:
    """The published password of a demo account."""
    return f"{name}-demo"


def ensure_demo_raters(sessions, *, host: str) -> list[tuple[str, str, str]]:
    """Add the demo accounts that are missing; returns (name, role, password) of each, for the start-up message."""
    if host not in LOCAL_HOSTS:
        raise CampaignError(
            f"demo_raters: the demo accounts have published passwords; serve them on 127.0.0.1, not {host}"
        )
    with sessions.begin() as session:
        for name, role in DEMO_RATERS:
            try:
                rater_by_name(session=session, name=name)
            except RaterError:
                create_rater(session=session, name=name, role=role, password=demo_password(name))
    return [(name, role, demo_password(name)) for name, role in DEMO_RATERS]
