"""What `plumb collect serve` can set up before it serves: the campaign, demo accounts and the first candidates.

With `campaign_file`, a campaign missing from the store is imported with its prompts.
With `generate_first: N`, the first N prompts without candidates are answered by every
policy before the page opens, so raters have tasks at once; with `generate_rest`, the
remaining prompts are answered in a background thread, a chunk at a time, and each
chunk's tasks join the pool as soon as both policies have answered it. `demo_raters`
adds the demo accounts (printed at start) and is refused on a non-local address.
"""

import logging
import threading

from collect.campaign import spec_of
from collect.generate import generate_missing, make_generator
from collect.store import CampaignError, build_tasks, campaign_by_name, create_rater, rater_by_name
from collect.store.raters import RaterError
from plumb.generation import LoadedModels

logger = logging.getLogger(__name__)

# Demo accounts: one per role, with passwords everyone can read, so only for a server on this machine.
DEMO_RATERS = (("alice", "rater"), ("bob", "rater"), ("rita", "reviewer"), ("adam", "admin"))
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def demo_password(name: str) -> str:
    """The published password of a demo account."""
    return f"{name}-demo"


def ensure_campaign(sessions, *, campaign: str, campaign_file: str | None, db: str | None) -> None:
    """Import `campaign_file` (the campaign and its prompts) when the store has no campaign named `campaign`."""
    from collect import import_prompts
    from collect.campaign import load_campaign

    with sessions() as session:
        try:
            campaign_by_name(session=session, name=campaign)
            return
        except CampaignError:
            if not campaign_file:
                raise
    defined = load_campaign(campaign_file).name
    if defined != campaign:
        raise CampaignError(f"{campaign_file}: defines campaign '{defined}', not '{campaign}' (the `campaign` key)")
    counts = import_prompts.main(campaign_file, db=db)
    logger.info("Imported campaign '%s': %d prompts", campaign, counts["prompts"])


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


class CandidateFiller:
    """Answers a campaign's prompts with its policies, a chunk of prompts at a time, building tasks after each chunk.

    State lives here because the generators (loaded models) are made once and reused by
    every chunk, in the foreground before serving and then in the background thread.
    """

    def __init__(self, sessions, campaign: str, *, batch_size: int = 8, models: LoadedModels | None = None):
        with sessions() as session:
            self.spec = spec_of(campaign_by_name(session=session, name=campaign))
        self.sessions, self.campaign, self.batch_size = sessions, campaign, batch_size
        self.models = models or LoadedModels()  # policies of one model (the demo's two temperatures) share it
        self.generators = {}
        self.error: Exception | None = None

    def fill(self, prompts: int | None) -> int:
        """Answer up to `prompts` more prompts (None: all) with every policy; returns the new tasks."""
        for policy in self.spec.policies:
            if policy.name not in self.generators:
                self.generators[policy.name] = make_generator(policy, self.models)
            generate_missing(
                self.sessions,
                self.campaign,
                policy,
                self.generators[policy.name],
                batch_size=self.batch_size,
                limit=prompts,
            )
        with self.sessions.begin() as session:
            campaign = campaign_by_name(session=session, name=self.campaign)
            return len(build_tasks(session=session, campaign=campaign, overlap=self.spec.raters_per_task))

    def fill_in_background(self, *, chunk: int) -> threading.Thread:
        """Answer the remaining prompts in a daemon thread, `chunk` prompts at a time; errors are logged and kept."""

        def run() -> None:
            try:
                while new_tasks := self.fill(chunk):
                    logger.info("Background generation: %d new tasks in the pool", new_tasks)
                logger.info("Background generation: every prompt of '%s' has candidates", self.campaign)
            except Exception as error:  # a background failure must not stop the server raters are using
                self.error = error
                logger.error("Background generation stopped: %s", error)

        thread = threading.Thread(target=run, name="plumb-candidates", daemon=True)
        thread.start()
        return thread
