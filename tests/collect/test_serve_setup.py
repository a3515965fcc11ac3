"""What `plumb collect serve` sets up before serving: campaign, demo accounts, candidates first, then the rest."""

import subprocess
import sys

import pytest
import yaml
from sqlalchemy import func, select

from collect.services.campaign_import import ensure_campaign
from collect.services.demo_accounts import demo_password, ensure_demo_raters, refuse_published_passwords
from collect.services.generation import CandidateFiller, generate_missing
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
from collect.store.raters import set_password
from tests.support.campaigns import seed_campaign
from tests.support.serving import free_port


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


def test_a_restart_with_tasks_waiting_opens_the_page_without_generating_first(sessions, sqlite_url, campaign_file):
    ensure_campaign(sessions, campaign="demo", campaign_file=campaign_file, db=sqlite_url)
    filler = CandidateFiller(sessions, "demo", batch_size=4)
    assert filler.fill_first(2) == 2  # nothing to judge yet: two prompts answered before the page opens
    assert filler.fill_first(2) == 0  # a restart: two tasks wait, so nothing is generated first
    assert count(sessions, Candidate.id) == 4
    with sessions.begin() as session:
        for task in session.scalars(select(Task)):
            task.judgment_count = task.target_overlap  # every waiting task judged
    assert filler.fill_first(2) == 2 and count(sessions, Candidate.id) == 8


class NoModels:
    def get(self, model_spec: str):
        raise AssertionError(f"{model_spec} was loaded with every prompt already answered")


def test_shipped_candidates_open_the_page_without_loading_a_model(sessions, sqlite_url, campaign_file):
    ensure_campaign(sessions, campaign="demo", campaign_file=campaign_file, db=sqlite_url)
    CandidateFiller(sessions, "demo", batch_size=16).fill(None)  # as if every answer had been shipped
    filler = CandidateFiller(sessions, "demo", batch_size=16, models=NoModels())
    assert filler.fill_first(8) == 0
    filler.fill_in_background(chunk=8).join(timeout=600)
    assert filler.error is None and count(sessions, Candidate.id) == 80


def serve_on_all_addresses(*flags, timeout=120) -> subprocess.CompletedProcess:
    """`plumb collect serve --host 0.0.0.0` with `flags`: a refusal returns; a server that starts fails."""
    command = [sys.executable, "-m", "plumb", "collect", "serve", "--host", "0.0.0.0", "--port", str(free_port())]
    try:
        return subprocess.run([*command, *flags], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("plumb collect serve started listening on 0.0.0.0 instead of refusing")


def test_the_demo_config_on_a_public_address_is_refused_before_anything_is_made(tmp_path):
    db = tmp_path / "demo" / "collect.sqlite"
    result = serve_on_all_addresses("--config", "configs/collect/demo.yaml", "--db", str(db))
    assert result.returncode == 2 and "serve them on 127.0.0.1, not 0.0.0.0" in result.stderr
    assert not db.parent.exists()  # no database made, no campaign imported


def test_published_demo_passwords_keep_a_database_off_public_addresses_until_changed(sessions, sqlite_url, tmp_path):
    seed_campaign(sessions, name="demo")
    ensure_demo_raters(sessions, host="127.0.0.1")
    with sessions.begin() as session:  # two of the four change their passwords
        for name in ("alice", "adam"):
            set_password(session=session, name=name, password=f"{name}-own-secret")
    result = serve_on_all_addresses("--db", sqlite_url, "--campaign", "demo", "--output_dir", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert "account(s) bob, rita still have their published demo password" in result.stderr
    refuse_published_passwords(sessions, host="127.0.0.1")  # this machine only: allowed
    with sessions.begin() as session:
        for name in ("bob", "rita"):
            set_password(session=session, name=name, password=f"{name}-own-secret")
    refuse_published_passwords(sessions, host="0.0.0.0")  # no published password left: allowed


def test_the_first_prompt_is_answered_alone_so_progress_can_say_how_long_the_rest_takes(
    sessions, sqlite_url, campaign_file
):
    ensure_campaign(sessions, campaign="demo", campaign_file=campaign_file, db=sqlite_url)
    sizes = []

    def generator(batch):
        sizes.append(len(batch))
        return ["An answer."] * len(batch)

    policy = CandidateFiller(sessions, "demo").spec.policies[0]
    assert generate_missing(sessions, "demo", policy, generator, batch_size=16, limit=20) == 20
    assert sizes == [1, 16, 3]
