"""Informative pairing's view of the store: each campaign's battles so far as pair weights, refit now and then.

The battles are read exactly as the leaderboard reads them (`load_items`, `battle_records`,
`count_battles`: every live pairwise judgment between two different policies, identity
leaks left out), fitted once (`pairing.informative_weights`: one Newton fit, no bootstrap),
and the weights kept for `REFRESH_SECONDS`. A battle start then costs a dictionary lookup;
the read and the fit happen at most once per refresh and campaign, by one caller, while the
others go on with the weights they had. A few dozen battles more or less between refits
barely move the weights, and every pair keeps a share of exploration meanwhile.
"""

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from collect.services.arena.pairing import informative_weights, wins_among
from collect.services.arena.ratings import count_battles
from collect.services.export.items import load_items
from collect.services.export.records import battle_records
from collect.store import campaign_by_name

REFRESH_SECONDS = 30.0


@dataclass
class _Fit:
    policies: tuple[str, ...]
    weights: np.ndarray | None  # None until the first fit
    fitted_at: float
    lock: threading.Lock


def campaign_wins(sessions, campaign: str, policies: tuple[str, ...]) -> np.ndarray:
    """(n, n) wins among `policies` in the battles of `campaign` the leaderboard counts (ties half to each)."""
    with sessions.begin() as session:
        battles = battle_records(load_items(session, campaign_by_name(session=session, name=campaign).id))
    if not battles:  # count_battles refuses an empty list
        return np.zeros((len(policies), len(policies)))
    counts = count_battles(*([b[key] for b in battles] for key in ("model_a", "model_b", "winner")), source=campaign)
    return wins_among(policies, counts)


class PairingFits:
    """Informative pair weights per (store, campaign), refit from the store once they are `refresh_seconds` old.

    Thread-safe; keyed on the `sessions` factory itself (weakly), so one process serving
    several databases keeps their campaigns apart even where names repeat.
    """

    def __init__(self, *, refresh_seconds: float = REFRESH_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._fits: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def weights(self, sessions, campaign: str, policies: tuple[str, ...]) -> np.ndarray:
        """Weights over the pairs of `policies` (`pairing.pair_indices` order) from `campaign`'s battles."""
        policies = tuple(policies)
        with self._lock:
            fits = self._fits.setdefault(sessions, {})
            fit = fits.get(campaign)
            if fit is None or fit.policies != policies:  # a changed campaign definition starts afresh
                fit = fits[campaign] = _Fit(policies, None, -float("inf"), threading.Lock())
        if fit.weights is not None and self.clock() - fit.fitted_at < self.refresh_seconds:
            return fit.weights
        # Only the first caller waits for a fit; while one refreshes, the rest use the weights they had.
        if fit.lock.acquire(blocking=fit.weights is None):
            try:
                if fit.weights is None or self.clock() - fit.fitted_at >= self.refresh_seconds:
                    fit.weights = informative_weights(campaign_wins(sessions, campaign, policies))
                    fit.fitted_at = self.clock()
            finally:
                fit.lock.release()
        return fit.weights

    def forget(self) -> None:
        """Drop every cached fit (tests, or after restoring a backup into a running process)."""
        with self._lock:
            self._fits = weakref.WeakKeyDictionary()


FITS = PairingFits()
