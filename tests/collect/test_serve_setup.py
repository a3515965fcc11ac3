"""What `plumb collect serve` sets up before serving: campaign, demo accounts, candidates first, then the rest."""

import pytest
import yaml
from sqlalchemy import func, select

from collect.services.campaign_import import ensure_campaign
from collect.services.demo_accounts import demo_password, ensure_demo_raters
from collect.services.generation import CandidateFiller
from collect.store import (
    CampaignError,
    Candidate,
    Prompt,
    Task,
    authenticate,
    make_engine,
    session_factory,
    upgrade,
)


@pytest.fixture
def sessions(sqlite_url):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture
def campaign_file(tmp_path, tiny_policy_dir):
    """The demo campaign's shape (two policies on one model, shipped prompts) on the tiny random policy."""
    policies = [
        {
            "name": f"tiny-t{t}",
            "model": tiny_policy_dir,
            "generation": {"max_new_tokens": 4, "do_sample": True, "temperature": t},
        }
        for t in (0.7, 1.2)
    ]
    path = tmp_path / "campaign.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "demo",
                "prompts": "builtin:instruct",
                "prompts_split": "test",
                "policies": policies,
                "raters_per_task": 1,
                "max_raters_per_task": 1,
            }
        )
    )
    return str(path)


def count(sessions, column) -> int:
    with sessions() as session:
        return session.scalar(select(func.count(column)))


def test_the_campaign_is_imported_once_and_a_wrong_name_is_refused(sessions, sqlite_url, campaign_file):
    ensure_campaign(sessions, campaign="demo", campaign_file=campaign_file, db=sqlite_url)
    ensure_campaign(sessions, campaign="demo", campaign_file=campaign_file, db=sqlite_url)
    assert count(sessions, Prompt.id) == 40
    with pytest.raises(CampaignError, match="defines campaign 'demo', not 'other'"):
        ensure_campaign(sessions, campaign="other", campaign_file=campaign_file, db=sqlite_url)
    with pytest.raises(CampaignError, match="other"):
        ensure_campaign(sessions, campaign="other", campaign_file=None, db=sqlite_url)


def test_demo_accounts_are_added_once_and_only_for_this_machine(sessions):
    logins = ensure_demo_raters(sessions, host="127.0.0.1")
    assert [(name, role) for name, role, _ in logins] == [
        ("alice", "rater"),
        ("bob", "rater"),
        ("rita", "reviewer"),
        ("adam", "admin"),
    ]
    assert ensure_demo_raters(sessions, host="localhost") == logins  # a restart finds them
    with sessions() as session:
        assert authenticate(session=session, name="rita", password=demo_password("rita")).role == "reviewer"
    with pytest.raises(CampaignError, match="127.0.0.1, not 0.0.0.0"):
        ensure_demo_raters(sessions, host="0.0.0.0")


def test_the_first_prompts_are_answered_before_serving_and_the_rest_in_the_background(
    sessions, sqlite_url, campaign_file
):
    ensure_campaign(sessions, campaign="demo", campaign_file=campaign_file, db=sqlite_url)
    filler = CandidateFiller(sessions, "demo", batch_size=4)
    assert filler.fill(3) == 3  # both policies answered the same three prompts: one pair each
    assert count(sessions, Candidate.id) == 6
    filler.fill_in_background(chunk=16).join(timeout=600)
    assert filler.error is None
    assert count(sessions, Task.id) == 40 and count(sessions, Candidate.id) == 80
    with sessions() as session:
        assert all(len(task.candidate_ids) == 2 for task in session.scalars(select(Task)))
