"""Campaign YAMLs and the `plumb collect init | add-rater | import` commands."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from collect import import_prompts
from collect.domain.campaign import load_campaign
from collect.init import main as init_main
from collect.services import campaign_import
from collect.services.scheduling import next_task, submit_judgment
from collect.store import (
    Campaign,
    CampaignError,
    Candidate,
    Policy,
    Prompt,
    Task,
    campaign_by_name,
    make_engine,
    open_store,
    rater_by_name,
    session_factory,
)
from plumb.config import ConfigError
from plumb.data import DataError
from tests.support.campaigns import seed_campaign, seed_raters, work_of_choosing
from tests.support.postgres import create_database, drop_database

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs" / "collect" / "campaigns" / "demo.yaml"


def plumb(*args):
    return subprocess.run(
        [sys.executable, "-m", "plumb", "collect", *args], capture_output=True, text=True, timeout=300, cwd=REPO
    )


def write_campaign(tmp_path, text="name: t\n"):
    path = tmp_path / "campaign.yaml"
    path.write_text(text)
    return str(path)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def candidates_row(i, **extra):
    return {
        "prompt": f"question {i}",
        "prompt_id": f"q{i}",
        **extra,
        "candidates": [{"policy": "a", "completion": f"answer a{i}"}, {"policy": "b", "completion": f"answer b{i}"}],
    }


def test_the_demo_campaign_is_valid_and_offers_the_seven_point_scale_and_both_bad():
    spec = load_campaign(DEMO)
    labels = [option["label"] for option in spec.scale()]
    assert labels == [
        "A much better",
        "A better",
        "A slightly better",
        "Tie",
        "B slightly better",
        "B better",
        "B much better",
        "Both bad",
    ]
    assert spec.flags == ["unsafe", "factually wrong", "broken"] and "## How to judge" in spec.guidelines


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: t\nraters_per_tsak: 2\n", "unknown key 'raters_per_tsak' (did you mean 'raters_per_task'?)"),
        ("name: t\nkind: essay\n", "key 'kind': expected one of pairwise, ranking, rating"),
        ("name: t\nraters_per_task: 3\nmax_raters_per_task: 2\n", "key 'max_raters_per_task'"),
        ("kind: pairwise\n", "key 'name' is required"),
    ],
)
def test_campaign_errors_name_the_file_and_the_key(tmp_path, text, message):
    path = write_campaign(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_campaign(path)
    assert path in str(error.value) and message in str(error.value)


def test_init_add_rater_and_import_from_the_command_line(tmp_path):
    db = str(tmp_path / "c.sqlite")
    assert plumb("init", "--db", db).returncode == 0
    added = plumb("add-rater", "alice", "--role", "reviewer", "--db", db)
    assert added.returncode == 0 and "API token" in added.stdout
    again = plumb("add-rater", "alice", "--db", db)
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr
    source = write_jsonl(tmp_path / "rows.jsonl", [candidates_row(i) for i in range(3)])
    imported = plumb("import", "--campaign", write_campaign(tmp_path), "--source", source, "--db", db)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout.splitlines()[-1]) == {
        "campaign": "t",
        "rows": 3,
        "new_tasks": 3,
        "prompts": 3,
        "candidates": 6,
        "tasks": 3,
    }


def test_a_database_without_init_is_refused_with_the_fix(tmp_path):
    result = plumb("add-rater", "bob", "--db", str(tmp_path / "none.sqlite"))
    assert result.returncode == 2 and "run `plumb collect init" in result.stderr


def test_import_prompts_only_from_conversations_then_parquet_with_candidates(tmp_path):
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    counts = import_prompts.main(str(DEMO), source="builtin:instruct", db=db)  # its test split: conversations
    assert counts["prompts"] == counts["rows"] > 0 and counts["tasks"] == 0
    import datasets

    parquet = tmp_path / "rows.parquet"
    datasets.Dataset.from_list([candidates_row(i, gold={"ranks": [2, 1]}) for i in range(2)]).to_parquet(parquet)
    campaign = write_campaign(tmp_path, "name: p\nkind: ranking\n")
    assert import_prompts.main(campaign, source=str(parquet), db=db)["tasks"] == 2
    with open_store(db)() as session:
        prompt = session.scalar(select(Prompt).where(Prompt.external_id == "q1"))
        assert prompt.messages == [{"role": "user", "content": "question 1"}]
        task = session.scalar(select(Task).where(Task.prompt_id == prompt.id))
        assert task.is_gold and task.kind == "ranking"
        assert sorted(task.gold_answer["candidate_ranks"].values()) == [1, 2]


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ({"prompt_id": "q9"}, "row 2: field 'prompt': missing"),
        ({"prompt": "hi", "candidates": [{"completion": "x"}]}, "row 2: field 'candidates': entry 0"),
        ({"prompt": "question 0", "prompt_id": "q0"}, "row 2: prompt_id 'q0' is already in campaign 't'"),
    ],
)
def test_a_bad_row_is_named_and_nothing_is_imported(tmp_path, bad_row, message):
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    source = write_jsonl(tmp_path / "rows.jsonl", [candidates_row(0), candidates_row(1), bad_row])
    with pytest.raises(DataError, match=message):
        import_prompts.main(write_campaign(tmp_path), source=source, db=db)
    with open_store(db)() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
        assert session.scalar(select(func.count()).select_from(Candidate)) == 0


def test_a_lone_surrogate_in_an_import_is_one_line_naming_the_line_and_field(tmp_path):
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    source = tmp_path / "rows.jsonl"
    # json.dumps writes the escape a client could send; parsed, it is text no UTF-8 store can hold.
    source.write_text(json.dumps(candidates_row(0)) + "\n" + json.dumps(candidates_row(1, prompt="a \ud800 b")) + "\n")
    result = plumb("import", "--campaign", write_campaign(tmp_path), "--source", str(source), "--db", db)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "rows.jsonl: line 2: field 'prompt' contains a lone UTF-16 surrogate" in result.stderr


def rate_once(sessions, campaign: str, rater: str) -> tuple[float, str | None]:
    """One rater's next task and answer, as two requests: the seconds they took, and the error they met if any."""
    began = time.monotonic()
    try:
        with sessions.begin() as session:
            them = rater_by_name(session=session, name=rater)
            live = campaign_by_name(session=session, name=campaign)
            assignment = next_task(session=session, campaign=live, rater=them)
        with sessions.begin() as session:
            submit_judgment(session=session, rater=them, assignment_id=assignment.id, preference=1)
    except OperationalError as error:  # "database is locked": SQLite's busy timeout ran out
        return time.monotonic() - began, str(error.orig)
    return time.monotonic() - began, None


def test_raters_keep_judging_while_a_large_import_runs(tmp_path):
    """An import of thousands of rows never makes a rater wait for all of it: at most a small part of it."""
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    engine = make_engine(db)
    sessions = session_factory(engine)
    seed_campaign(sessions, name="live", prompts=100, raters_per_task=1, max_raters_per_task=1)
    seed_raters(sessions, 1)
    small = write_jsonl(tmp_path / "small.jsonl", [candidates_row(i) for i in range(2)])
    import_prompts.main(write_campaign(tmp_path, "name: warm\n"), source=small, db=db)  # loads the readers once
    source = write_jsonl(tmp_path / "rows.jsonl", [candidates_row(i) for i in range(1500)])
    campaign_file = write_campaign(tmp_path)
    spent = {}

    def run_import():
        spent["counts"] = import_prompts.main(campaign_file, source=source, db=db)
        spent["ended"] = time.monotonic()

    importer = threading.Thread(target=run_import)
    importer.start()
    tries, answered_at = [], []
    while importer.is_alive():
        tries.append(rate_once(sessions, "live", "rater0"))
        answered_at.append(time.monotonic())
        time.sleep(0.2)
    importer.join()
    engine.dispose()
    # Before imports were written in short transactions, a request waited for the whole import (30 s, then
    # "database is locked", when the import took longer): one answer at most came before it ended. Judged by the
    # order of events, not by durations, so a loaded machine slows both sides alike.
    assert [error for _, error in tries if error] == []
    assert sum(at < spent["ended"] for at in answered_at) >= 3, (answered_at, spent["ended"])
    assert spent["counts"]["tasks"] == 1500  # the rater kept being answered all along


def count_rows(sessions, model, *, staging: bool = False) -> int:
    """Rows of `model` (Prompt, Task or Policy) in real campaigns, or in import staging campaigns."""
    in_staging = Campaign.name.startswith(campaign_import.STAGING_PREFIX)
    with sessions() as session:
        return session.scalar(
            select(func.count(model.id))
            .join(Campaign, model.campaign_id == Campaign.id)
            .where(in_staging if staging else ~in_staging)
        )


def test_an_import_that_fails_midway_leaves_nothing_and_names_the_row(db_url, tmp_path, monkeypatch):
    init_main(db_url)
    campaign_file = write_campaign(tmp_path)
    first = write_jsonl(tmp_path / "first.jsonl", [candidates_row(i) for i in range(3)])
    import_prompts.main(campaign_file, source=first, db=db_url)
    stage_row = campaign_import.stage_row

    def fails_at_q7(session, staging, row, policies, **settings):
        if row.prompt_id == "q7":
            raise CampaignError("cannot be stored")  # as a store check would, after rows 3..6 were committed
        return stage_row(session, staging, row, policies, **settings)

    monkeypatch.setattr(campaign_import, "BATCH_SECONDS", 0.0)  # every row its own transaction
    monkeypatch.setattr(campaign_import, "stage_row", fails_at_q7)
    rows = [candidates_row(i) for i in range(3, 10)]
    with pytest.raises(DataError, match="rows.jsonl: row 4: cannot be stored"):
        import_prompts.main(campaign_file, source=write_jsonl(tmp_path / "rows.jsonl", rows), db=db_url)
    sessions = open_store(db_url)
    assert [count_rows(sessions, model) for model in (Prompt, Task, Policy)] == [3, 3, 2]
    assert [count_rows(sessions, model, staging=True) for model in (Prompt, Task, Policy)] == [0, 0, 0]

    monkeypatch.setattr(campaign_import, "stage_row", stage_row)
    more = [{**candidates_row(i), "candidates": [{"policy": "c", "completion": f"c{i}"}]} for i in range(3, 5)]
    more[0]["candidates"].append({"policy": "a", "completion": "a3"})
    counts = import_prompts.main(campaign_file, source=write_jsonl(tmp_path / "more.jsonl", more), db=db_url)
    assert counts == {"campaign": "t", "rows": 2, "new_tasks": 1, "prompts": 5, "candidates": 9, "tasks": 4}
    with sessions() as session:
        campaign = campaign_by_name(session=session, name="t")
        assert session.scalars(
            select(Policy.name).where(Policy.campaign_id == campaign.id).order_by(Policy.name)
        ).all() == [
            "a",
            "b",
            "c",
        ]
        task = session.scalars(select(Task).where(Task.campaign_id == campaign.id).order_by(Task.id)).all()[-1]
        shown = [session.get(Candidate, cid) for cid in task.candidate_ids]
        assert [session.get(Policy, c.policy_id).name for c in shown] == ["a", "c"]  # as build_tasks: by policy id
        assert session.scalar(select(func.count(Campaign.id))) == 1
    sessions.kw["bind"].dispose()


def test_after_a_large_import_leasing_reads_few_rows_on_postgresql(postgres_server, tmp_path):
    # Without fresh statistics the planner reads every new task on each lease, until autovacuum runs.
    url = create_database(postgres_server)
    init_main(url)
    rows = write_jsonl(tmp_path / "rows.jsonl", [candidates_row(i) for i in range(600)])
    import_prompts.main(write_campaign(tmp_path), source=rows, db=url)
    sessions = open_store(url)
    seed_raters(sessions, 1)
    assert work_of_choosing(sessions, "rater0", campaign="t") < 100
    sessions.kw["bind"].dispose()
    drop_database(postgres_server, url)


def test_a_killed_import_leaves_nothing_visible_and_the_next_import_clears_it(tmp_path):
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    campaign_file = write_campaign(tmp_path)
    source = write_jsonl(tmp_path / "rows.jsonl", [candidates_row(i) for i in range(3000)])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "plumb",
            "collect",
            "import",
            "--campaign",
            campaign_file,
            "--source",
            source,
            "--db",
            db,
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sessions = open_store(db)
    try:
        deadline = time.monotonic() + 240
        while count_rows(sessions, Prompt, staging=True) < 100:  # some batches are committed
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        process.kill()
        process.wait()
    assert count_rows(sessions, Prompt) == count_rows(sessions, Task) == 0
    assert count_rows(sessions, Prompt, staging=True) >= 100

    counts = import_prompts.main(campaign_file, source=write_jsonl(tmp_path / "few.jsonl", [candidates_row(0)]), db=db)
    assert counts["prompts"] == counts["tasks"] == 1
    assert count_rows(sessions, Prompt, staging=True) == count_rows(sessions, Policy, staging=True) == 0
    with sessions() as session:
        assert session.scalar(select(func.count(Campaign.id))) == 1
        assert session.scalar(select(func.count(Candidate.id))) == 2
    sessions.kw["bind"].dispose()
