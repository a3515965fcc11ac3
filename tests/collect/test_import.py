"""Campaign YAMLs and the `plumb collect init | add-rater | import` commands."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collect import import_prompts
from collect.domain.campaign import load_campaign
from collect.init import main as init_main
from collect.store import Campaign, Candidate, Prompt, Task, open_store
from plumb.config import ConfigError
from plumb.data import DataError

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
    counts = import_prompts.main(str(DEMO), db=db)  # builtin:instruct test split: conversations
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
