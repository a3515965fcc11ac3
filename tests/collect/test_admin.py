"""What admins do: rater management, export and push, progress plots; and that nobody else may do it."""

import re
import zipfile
from datetime import datetime, timedelta

import datasets
import pytest
from PIL import Image

from collect.app.plots import cumulative, plot_judgments_over_time, plot_judgments_per_rater
from collect.services import admin
from collect.services.export.dataset import PushError
from collect.store import RaterError, authenticate, create_rater, rater_by_name, rater_by_token
from tests.support.campaigns import campaign_with_reviewer, judge


@pytest.fixture
def campaign(store):
    """(sessions, task ids) of campaign 'demo' with raters rater0..2 and ana, reviewer rev, and admin 'boss'."""
    _, sessions = store
    tasks = campaign_with_reviewer(sessions)
    with sessions.begin() as session:
        create_rater(session=session, name="boss", role="admin", password="boss-secret")
    return sessions, tasks


def signs_in(sessions, name: str, password: str) -> bool:
    with sessions.begin() as session:
        return authenticate(session=session, name=name, password=password) is not None


def test_an_admin_adds_raters_changes_roles_and_passwords_and_deactivates(campaign):
    sessions, (_, t1, *_) = campaign
    message = admin.add_rater(sessions, admin_name="boss", name=" cleo ", role="reviewer")
    generated = re.search(r"Password \(shown once\): `([^`]+)`", message).group(1)
    token = re.search(r"API token \(shown once\): `([^`]+)`", message).group(1)
    assert signs_in(sessions, "cleo", generated)
    admin.add_rater(sessions, admin_name="boss", name="dan", role="rater", password="dan-secret")
    assert signs_in(sessions, "dan", "dan-secret")
    judge(sessions, "dan", t1, preference=1)
    table = {row["name"]: row for row in admin.rater_table(sessions, campaign="demo", admin_name="boss")}
    assert table["dan"] == {"name": "dan", "role": "rater", "active": True, "judgments": 1}
    assert table["cleo"]["role"] == "reviewer" and len(table) == 8

    assert admin.change_role(sessions, admin_name="boss", name="dan", role="reviewer") == "'dan' is now a reviewer."
    admin.change_active(sessions, admin_name="boss", name="cleo", active=False)
    assert not signs_in(sessions, "cleo", generated)
    with sessions.begin() as session:
        assert rater_by_token(session=session, token=token) is None
        with pytest.raises(RaterError, match="rater 'cleo' is deactivated"):  # an open page is locked out too
            rater_by_name(session=session, name="cleo")
    admin.change_active(sessions, admin_name="boss", name="cleo", active=True)
    assert signs_in(sessions, "cleo", generated)
    message = admin.reset_password(sessions, admin_name="boss", name="dan")
    assert not signs_in(sessions, "dan", "dan-secret")
    assert signs_in(sessions, "dan", re.search(r"`([^`]+)`", message).group(1))
    admin.reset_password(sessions, admin_name="boss", name="dan", password="new-secret")
    assert signs_in(sessions, "dan", "new-secret")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_bad_rater_changes_are_refused_with_the_reason(campaign):
    sessions, _ = campaign
    cases = [
        (admin.add_rater, {"name": "ana", "role": "rater"}, "a rater named 'ana' already exists"),
        (admin.add_rater, {"name": "eve", "role": "boss"}, "unknown role 'boss'"),
        (admin.add_rater, {"name": "eve", "role": "rater", "password": "  "}, "a password cannot be empty"),
        (admin.add_rater, {"name": " ", "role": "rater"}, "a rater needs a name"),
        (admin.change_role, {"name": "ana", "role": "owner"}, "unknown role 'owner'"),
        (admin.change_role, {"name": "nobody", "role": "admin"}, "no rater named 'nobody'"),
        (admin.change_role, {"name": "boss", "role": "rater"}, "you cannot change your own role"),
        (admin.change_active, {"name": "boss", "active": False}, "you cannot deactivate yourself"),
        (admin.reset_password, {"name": "ana", "password": ""}, "a password cannot be empty"),
    ]
    for function, arguments, message in cases:
        with pytest.raises(RaterError, match=message):
            function(sessions, admin_name="boss", **arguments)
    assert signs_in(sessions, "boss", "boss-secret")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_only_admins_manage_raters_and_tokens_and_push(campaign, tmp_path):
    sessions, _ = campaign
    for name in ("ana", "rev"):
        calls = [
            lambda name=name: admin.rater_table(sessions, campaign="demo", admin_name=name),
            lambda name=name: admin.add_rater(sessions, admin_name=name, name="mallory", role="admin"),
            lambda name=name: admin.change_role(sessions, admin_name=name, name=name, role="admin"),
            lambda name=name: admin.change_active(sessions, admin_name=name, name="rater0", active=False),
            lambda name=name: admin.reset_password(sessions, admin_name=name, name="boss", password="taken"),
            lambda name=name: admin.new_api_token(sessions, admin_name=name, name="rater0"),
            lambda name=name: admin.push_campaign(
                sessions, campaign="demo", admin_name=name, format="judgments", repo="team/x", output_root=tmp_path
            ),
        ]
        for call in calls:
            with pytest.raises(PermissionError, match="admins only"):
                call()
    # Exporting is a reviewer's as well as an admin's, on the page as through REST; publishing is an admin's.
    with pytest.raises(PermissionError, match="exporting is for reviewers and admins"):
        admin.export_campaign(sessions, campaign="demo", admin_name="ana", format="judgments", output_root=tmp_path)
    with pytest.raises(PermissionError, match="reviewers and admins"):
        admin.campaign_activity(sessions, campaign="demo", staff_name="ana")
    assert admin.campaign_activity(sessions, campaign="demo", staff_name="rev")["per_rater"] == {}
    assert signs_in(sessions, "boss", "boss-secret") and not (tmp_path / "exports").exists()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_admin_exports_a_downloadable_dataset_and_an_offline_push_says_why(campaign, tmp_path, monkeypatch):
    import huggingface_hub.constants

    sessions, (_, t1, t2, *_) = campaign
    judge(sessions, "rater0", t1, preference=2)
    judge(sessions, "rater1", t2, preference=-1)
    first = admin.export_campaign(
        sessions,
        campaign="demo",
        admin_name="boss",
        format="pairwise",
        output_root=tmp_path / "out",
        archive_dir=tmp_path / "zips",
    )
    second = admin.export_campaign(
        sessions, campaign="demo", admin_name="boss", format="pairwise", output_root=tmp_path / "out"
    )
    assert first.directory.parent == tmp_path / "out" / "exports" and first.directory != second.directory
    assert first.summary["rows"] == 2 and second.archive is None
    # Two prompts: one held out as the test split, read back as any Hub dataset folder is.
    assert {name: len(split) for name, split in datasets.load_dataset(str(first.directory)).items()} == {
        "train": 1,
        "test": 1,
    }
    with zipfile.ZipFile(first.archive) as archive:
        names = set(archive.namelist())
        assert {"summary.json", "README.md"} <= names and {
            n.split("-")[0] for n in names if n.endswith(".parquet")
        } == {"train", "test"}
    with pytest.raises(ValueError, match="unknown export format 'csv'"):
        admin.export_campaign(sessions, campaign="demo", admin_name="boss", format="csv", output_root=tmp_path)

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # never reach out, even with a network
    with pytest.raises(PushError, match="could not push to the Hub dataset repo 'team/prefs'"):
        admin.push_campaign(
            sessions,
            campaign="demo",
            admin_name="boss",
            format="battles",
            repo="team/prefs",
            output_root=tmp_path / "out",
        )
    with pytest.raises(PushError, match="give the Hub dataset repo"):
        admin.push_campaign(
            sessions, campaign="demo", admin_name="boss", format="battles", repo=" ", output_root=tmp_path / "out"
        )


def test_progress_per_task_and_rater_for_reviewers(campaign):
    sessions, (gold, t1, t2, t3, t4) = campaign
    judge(sessions, "rater0", t1, preference=2)
    judge(sessions, "rater1", t1, preference=-2)
    judge(sessions, "rater0", t2, preference=1)
    judge(sessions, "rater1", t2, preference=1)
    judge(sessions, "rater2", t3, preference=1)
    activity = admin.campaign_activity(sessions, campaign="demo", staff_name="rev")
    assert activity["per_rater"] == {"rater0": 2, "rater1": 2, "rater2": 1} and len(activity["times"]) == 5
    assert [(row["task"], row["prompt"], row["judgments"], row["status"]) for row in activity["tasks"]] == [
        (gold, "question 0", 0, "not started"),
        (t1, "question 1", 2, "waiting for a reviewer"),
        (t2, "question 2", 2, "complete"),
        (t3, "question 3", 1, "in progress"),
        (t4, "question 4", 0, "not started"),
    ]


def test_the_progress_table_names_a_task_by_its_last_question_on_one_line():
    asked = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi"},
        {"role": "user", "content": "Explain\n\nbriefly  " + "why " * 30},
    ]
    excerpt = admin.prompt_excerpt(asked, limit=20)
    assert excerpt == "Explain briefly why…" and len(excerpt) == 20
    assert admin.prompt_excerpt([{"role": "user", "content": "short"}]) == "short"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_staff_get_the_quality_report_and_the_leaderboard_raters_do_not(campaign, tmp_path):
    sessions, (_, t1, t2, *_) = campaign
    assert admin.campaign_quality(sessions, campaign="demo", staff_name="rev", plot_dir=str(tmp_path)) == (
        None,
        None,
        "No pairwise judgments yet.",
    )
    for task in (t1, t2):
        judge(sessions, "rater0", task, preference=2, seconds_spent=0.2)
        judge(sessions, "rater1", task, preference=1, seconds_spent=30.0)
    with pytest.raises(PermissionError, match="reviewers and admins"):
        admin.campaign_quality(sessions, campaign="demo", staff_name="ana", plot_dir=str(tmp_path))
    report, plot, note = admin.campaign_quality(sessions, campaign="demo", staff_name="rev", plot_dir=str(tmp_path))
    assert report["agreement"]["raw_agreement"] == 1.0 and report["simulated_judgments"] == 0
    speed = {row["rater"]: row["speed"] for row in report["raters"]}
    assert speed == {"rater0": "fast", "rater1": ""}  # 0.2 s cannot cover two answers; 30 s can
    assert plot.endswith(".png") and note == ""


def test_the_export_summary_says_why_mean_agreement_differs_from_raw_agreement(tmp_path):
    from collect.app.admin_tab import summary_markdown

    text = summary_markdown(tmp_path, {"rows": 2, "format": "pairwise", "mean_agreement": 0.92})
    assert '"mean_agreement": 0.92' in text
    assert "a task judged once counts 1, a 1-1 split 0.5" in text and "raw agreement" in text


def test_judgments_over_time_step_up_by_one_at_each_judgment():
    start = datetime(2025, 3, 1, 9, 15)
    later = [start + timedelta(minutes=10), start, start + timedelta(hours=2, minutes=5)]
    times, counts = cumulative(later)
    assert times == [start, start, start + timedelta(minutes=10), start + timedelta(hours=2, minutes=5)]
    assert counts == [0, 1, 2, 3]


def test_plots_are_written_as_png_and_skipped_without_data(tmp_path):
    start = datetime(2025, 3, 1, 9, 15)
    timeline = plot_judgments_over_time([start + timedelta(hours=h) for h in range(30)], tmp_path / "time.png")
    bars = plot_judgments_per_rater({"ana": 12, "ben": 3}, tmp_path / "raters.png")
    for path in (timeline, bars):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 300
    assert plot_judgments_over_time([], tmp_path / "none.png") is None
    assert plot_judgments_per_rater({}, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
