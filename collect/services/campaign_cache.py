"""A campaign and its parsed spec for the request paths, without parsing the stored definition on every request.

A campaign row has no version column, so the stored definition itself is the version: a
cached spec is used only while the definition read in this transaction equals the one it
was parsed from. That stays right across databases served by one process (where campaign
ids repeat) and if a definition is ever changed in place. The cached `CampaignSpec` is
shared: callers read it and never change it.
"""

import copy
import threading

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from collect.domain.campaign import CampaignSpec, spec_of
from collect.store import Campaign, campaign_by_name
from collect.store.limits import is_storable

# Far more campaigns than one server runs at once; past it the cache starts over rather than grow without bound.
MAX_CACHED = 256

_specs: dict[int, tuple[dict, CampaignSpec]] = {}
_lock = threading.Lock()
# Built once: building a SELECT costs more than running it on an indexed column.
_BY_NAME = select(Campaign).where(Campaign.name == bindparam("name"))


def campaign_spec(campaign: Campaign) -> CampaignSpec:
    """`spec_of(campaign)`, parsed once per campaign id and stored definition."""
    cached = _specs.get(campaign.id)
    if cached is not None and cached[0] == campaign.definition:
        return cached[1]
    spec = spec_of(campaign)
    with _lock:
        if len(_specs) >= MAX_CACHED:
            _specs.clear()
        # A copy: the key must not change if the caller's loaded definition is edited later.
        _specs[campaign.id] = (copy.deepcopy(campaign.definition), spec)
    return spec


def campaign_named(session: Session, name: str) -> Campaign:
    """The campaign called `name` (as `campaign_by_name`, whose `CampaignError` an unknown name gets)."""
    campaign = session.scalar(_BY_NAME, {"name": name}) if is_storable(name) else None
    if campaign is None:
        return campaign_by_name(session=session, name=name)  # raises, with the store's own message
    return campaign
