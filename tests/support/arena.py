"""Arena campaigns and battles for the tests: a campaign of two policies, and a battle with answers already in."""

import random

from collect.domain.campaign import as_definition, campaign_from_dict
from collect.services.arena.battles import start_battle
from collect.store import create_campaign, create_rater

POLICIES = [{"name": "sft", "model": "default"}, {"name": "dpo", "model": "default", "aliases": ["Plumby"]}]


def arena_campaign(sessions, **settings):
    """An 'arena' campaign with the policies sft and dpo (reading time 5 s), raters ana and ben; returns its spec."""
    spec = campaign_from_dict({"name": "arena", "policies": POLICIES, **settings})
    with sessions.begin() as session:
        create_campaign(session=session, name="arena", kind="pairwise", definition=as_definition(spec))
        for name in ("ana", "ben"):
            create_rater(session=session, name=name)
    return spec


def answered(spec, texts=("First answer.", "Second answer."), *, seed=0, rater="ana"):
    """A battle started at t=100 whose sides started at t=101 and t=102 with `texts` (A finished, B still going)."""
    battle = start_battle(spec, rater=rater, prompt="Tell me about rain.", rng=random.Random(seed), now=100.0)
    for index, text in enumerate(texts):
        battle.add_text(index, text, now=101.0 + index)
    battle.finish(0, now=103.0)
    battle.show()
    return battle
