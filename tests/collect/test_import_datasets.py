"""The field's own datasets as judgments (OpenAssistant, Chatbot Arena, UltraFeedback, HelpSteer, hh-rlhf), and an
import with labels that fails midway or is killed leaving nothing behind.

Every expected value is worked out from the fixture file itself (tests/collect/fixtures/imports).
"""

import json
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import pytest
from sqlalchemy import select

from collect.init import main as init_main
from collect.services import campaign_import
from collect.services.export.items import load_items
from collect.services.export.records import battle_records
from collect.store import (
    ApiToken,
    Assignment,
    AuditEvent,
    Campaign,
    CampaignError,
    Judgment,
    Prompt,
    Rater,
    campaign_by_name,
    open_store,
)
from plumb.data import DataError
from tests.support.imports import (
    empty_store_copy,
    fixture_path,
    fixture_records,
    gzipped,
    import_into,
    stored_judgments,
    table_counts,
    winner_text,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Where the module's empty store is made once (copied for each test)."""
    return tmp_path_factory.mktemp("template") / "empty.sqlite"


@pytest.fixture
def db(template, tmp_path):
    """An empty store of this test's own."""
    return empty_store_copy(template, tmp_path)


def oasst_groups() -> dict:
    """{prompt id: {reply text: rank + 1}} of every user turn whose live assistant replies are all ranked, and the
    user turns with two or more replies nobody ranked, from the trees themselves."""
    ranked, unranked = {}, []

    def walk(message):
        replies = [r for r in message["replies"] if not r["deleted"]]
        if message["role"] == "prompter" and len(replies) >= 2:
            if all(r["rank"] is not None for r in replies):
                ranked[f"oasst-{message['message_id']}"] = {r["text"]: r["rank"] + 1 for r in replies}
            elif all(r["rank"] is None for r in replies):
                unranked.append(message["message_id"])
        for reply in replies:
            walk(reply)

    for tree in fixture_records("oasst_trees.jsonl"):
        walk(tree["prompt"])
    return ranked, unranked


def test_openassistant_trees_give_ranking_judgments_or_their_pairs(db, tmp_path):
    ranked, unranked = oasst_groups()
    counts = import_into(db, tmp_path, fixture_path("oasst_trees.jsonl"), kind="ranking", name="ranked")
    assert counts["format"] == "oasst" and counts["trees"] == len(fixture_records("oasst_trees.jsonl"))
    assert counts["ranked_groups"] == counts["judgments"] == len(ranked) == 2
    assert counts["unannotated"] == len(unranked) == 1
    assert counts["left_out"] == {"deleted reply": 1, "user turn with a single reply (nothing to compare)": 1}
    found = {j["prompt"]: dict(zip(j["texts"], j["ranks"])) for j in stored_judgments(db, "ranked")}
    assert found == ranked
    assert {j["rater"] for j in stored_judgments(db, "ranked")} == {"oasst:oasst_trees.jsonl"}

    counts = import_into(db, tmp_path, fixture_path("oasst_trees.jsonl"), kind="pairwise", name="paired")
    assert counts["judgments"] == sum(len(list(combinations(group, 2))) for group in ranked.values()) == 4
    for judgment in stored_judgments(db, "paired"):
        assert winner_text(judgment) == min(judgment["texts"], key=ranked[judgment["prompt"]].get)


def test_chatbot_arena_battles_keep_their_models_votes_and_judges(db, tmp_path):
    battles = fixture_records("arena_battles.json")
    counts = import_into(db, tmp_path, fixture_path("arena_battles.json"))
    assert counts["format"] == "chatbot-arena" and counts["judgments"] == len(battles) == 5
    assert counts["imported_raters"] == len({b["judge"] for b in battles})
    by_prompt = {f"chatbot-arena-{b['question_id']}": b for b in battles}
    for judgment in stored_judgments(db):
        battle = by_prompt[judgment["prompt"]]
        assert judgment["rater"] == f"chatbot-arena:{battle['judge']}"
        assert set(judgment["policies"]) == {battle["model_a"], battle["model_b"]}
        if battle["winner"] == "tie (bothbad)":
            assert judgment["both_bad"]
        elif battle["winner"] == "tie":
            assert judgment["preference"] == 0
        else:
            winner = battle[battle["winner"]]
            assert judgment["policies"][0 if judgment["preference"] > 0 else 1] == winner
    sessions = open_store(db)
    with sessions() as session:
        battles_out = battle_records(load_items(session, campaign_by_name(session=session, name="moved-in").id))
    sessions.kw["bind"].dispose()
    assert len(battles_out) == len(battles)  # the leaderboard reads every vote


def test_a_clean_battle_file_without_conversations_is_refused(db, tmp_path):
    simple = [
        {k: v for k, v in b.items() if not k.startswith("conversation")} for b in fixture_records("arena_battles.json")
    ]
    source = tmp_path / "clean_battle_20240101.json"
    source.write_text(json.dumps(simple))
    with pytest.raises(DataError, match="no battle has its conversations"):
        import_into(db, tmp_path, source)


def ultrafeedback_ratings(aspect: str) -> dict:
    """{(instruction, model): the aspect's rating} where it is not N/A."""
    return {
        (record["instruction"], c["model"]): int(c["annotations"][aspect]["Rating"])
        for record in fixture_records("ultrafeedback.jsonl")
        for c in record["completions"]
        if c["annotations"][aspect]["Rating"] != "N/A"
    }


def test_ultrafeedback_ratings_become_rating_judgments_or_preferences(db, tmp_path):
    records = fixture_records("ultrafeedback.jsonl")
    expected = ultrafeedback_ratings("helpfulness")
    source = fixture_path("ultrafeedback.jsonl")
    counts = import_into(db, tmp_path, source, kind="rating", name="helpful", label_field="helpfulness")
    assert counts["judgments"] == len(records) and counts["imported_raters"] == 1
    owner = {c["response"]: (r["instruction"], c["model"]) for r in records for c in r["completions"]}
    found = {
        owner[text]: rating
        for judgment in stored_judgments(db, "helpful")
        for text, rating in zip(judgment["texts"], judgment["ratings"])
    }
    assert found == expected

    # Honesty has an N/A: that prompt's rating task is left out, the other is kept.
    counts = import_into(db, tmp_path, source, kind="rating", name="honest", label_field="honesty")
    assert counts["judgments"] == 1 and counts["left_out"] == {
        "rates only some of the candidates (a rating task needs all)": 1
    }

    # The default, fine-grained_score, is a mean: no rating, but a preference between each two completions.
    with pytest.raises(DataError, match=r"not whole points .* \(ultrafeedback judgments into rating campaign"):
        import_into(db, tmp_path, source, kind="rating", name="refused")
    counts = import_into(db, tmp_path, source, name="paired")
    scores = {c["response"]: c["fine-grained_score"] for r in records for c in r["completions"]}
    assert counts["judgments"] == sum(len(list(combinations(r["completions"], 2))) for r in records) == 4
    for judgment in stored_judgments(db, "paired"):
        assert winner_text(judgment) == max(judgment["texts"], key=scores.get)


def test_helpsteer_gzip_rows_of_one_prompt_become_one_rated_prompt(db, tmp_path):
    rows = fixture_records("helpsteer.jsonl")
    prompts = {}
    for row in rows:
        prompts.setdefault(row["prompt"], {})[row["response"]] = row["helpfulness"] + 1  # 0..4 onto 1..5
    counts = import_into(db, tmp_path, gzipped("helpsteer.jsonl", tmp_path), kind="rating", name="rated")
    assert counts["format"] == "helpsteer" and counts["prompts"] == len(prompts) and counts["candidates"] == len(rows)
    assert counts["judgments"] == len(prompts)
    found = {}
    for judgment in stored_judgments(db, "rated"):
        found.update(dict(zip(judgment["texts"], judgment["ratings"])))
    assert found == {response: rating for ratings in prompts.values() for response, rating in ratings.items()}

    counts = import_into(db, tmp_path, gzipped("helpsteer.jsonl", tmp_path), name="paired", label_field="verbosity")
    singles = sum(len(responses) == 1 for responses in prompts.values())
    assert counts["left_out"] == {"judgment of a prompt with too few candidates for a task": singles}
    verbosity = {row["response"]: row["verbosity"] for row in rows}
    for judgment in stored_judgments(db, "paired"):
        assert winner_text(judgment) == max(judgment["texts"], key=verbosity.get)


def test_hh_rlhf_pairs_with_the_prompt_inside_read_from_gzip(db, tmp_path):
    pairs = fixture_records("hh_rlhf.jsonl")
    counts = import_into(db, tmp_path, gzipped("hh_rlhf.jsonl", tmp_path))
    assert counts["format"] == "pairs" and counts["prompts"] == counts["judgments"] == len(pairs)
    chosen = {pair["chosen"].rsplit("\n\nAssistant: ", 1)[1] for pair in pairs}
    assert {winner_text(j) for j in stored_judgments(db)} == chosen
    sessions = open_store(db)
    with sessions() as session:
        prompts = session.scalars(select(Prompt.messages)).all()
    sessions.kw["bind"].dispose()
    # The prompt is what both transcripts share before the last reply: the dog-name pair keeps three turns.
    assert sorted(len(p) for p in prompts) == sorted(pair["chosen"].count("\n\nHuman: ") * 2 - 1 for pair in pairs)

    empty = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: "}
    source = tmp_path / "with-empty.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in [*pairs, empty, pairs[0]]))
    counts = import_into(db, tmp_path, source, name="more")
    assert counts["judgments"] == len(pairs)
    assert counts["left_out"] == {
        "pair with an empty reply (a few hh-rlhf transcripts end on one)": 1,
        "duplicate pair": 1,
    }


def imported_rows(db: str) -> list[int]:
    """What an import with labels writes, table by table: raters, tokens, assignments, judgments, judgment events."""
    sessions = open_store(db)
    with sessions() as session:
        events = session.scalars(select(AuditEvent.action)).all()
    sessions.kw["bind"].dispose()
    return [*table_counts(db, Rater, ApiToken, Assignment, Judgment), sum(e.startswith("judgment.") for e in events)]


def test_an_import_with_labels_that_fails_midway_leaves_no_judgment_or_rater(db_url, tmp_path, monkeypatch):
    init_main(db_url)
    stage_row = campaign_import.stage_row

    def fails_at_task_3(session, staging, row, policies, **settings):
        if row.prompt_id == "label-studio-3":
            raise CampaignError("cannot be stored")  # after tasks 1 and 2 and their judgments were committed
        return stage_row(session, staging, row, policies, **settings)

    monkeypatch.setattr(campaign_import, "BATCH_SECONDS", 0.0)  # every row its own transaction
    monkeypatch.setattr(campaign_import, "stage_row", fails_at_task_3)
    with pytest.raises(DataError, match="label_studio_rlhf.json: row 2: cannot be stored"):
        import_into(db_url, tmp_path, fixture_path("label_studio_rlhf.json"))
    assert imported_rows(db_url) == [0, 0, 0, 0, 0]
    assert table_counts(db_url, Campaign) == [0]


def test_a_killed_import_with_labels_is_cleared_by_the_next_one(db, tmp_path, monkeypatch):
    stage_row = campaign_import.stage_row

    def dies_at_task_3(session, staging, row, policies, **settings):
        if row.prompt_id == "label-studio-3":
            raise KeyboardInterrupt  # as a kill would stop it, but without the cleanup below
        return stage_row(session, staging, row, policies, **settings)

    monkeypatch.setattr(campaign_import, "BATCH_SECONDS", 0.0)
    monkeypatch.setattr(campaign_import, "stage_row", dies_at_task_3)
    monkeypatch.setattr(campaign_import, "_remove_after_failure", lambda *args: None)
    with pytest.raises(KeyboardInterrupt):
        import_into(db, tmp_path, fixture_path("label_studio_rlhf.json"))
    raters, tokens, assignments, judgments, events = imported_rows(db)
    assert (raters, judgments) == (2, 4)  # two tasks judged by both annotators, in the hidden staging campaign
    assert table_counts(db, Campaign) == [1]

    monkeypatch.setattr(campaign_import, "stage_row", stage_row)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "hi", "candidates": [{"policy": "a", "completion": "x"}]}) + "\n")
    import_into(db, tmp_path, rows)
    assert imported_rows(db) == [0, 0, 0, 0, 0]


def test_the_command_prints_the_summary_and_warns_about_what_it_left_out(tmp_path):
    db = str(tmp_path / "c.sqlite")
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text("name: moved-in\nkind: rating\n")
    source = fixture_path("ultrafeedback.jsonl")
    run = [sys.executable, "-m", "plumb", "collect"]
    subprocess.run([*run, "init", "--db", db], check=True, capture_output=True, cwd=REPO)
    result = subprocess.run(
        [*run, "import", "--campaign", str(campaign), "--source", str(source), "--db", db, "--label-field", "honesty"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["format"] == "ultrafeedback" and summary["judgments"] == 1
    assert "left out 1: rates only some of the candidates" in result.stderr
