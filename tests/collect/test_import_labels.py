"""Imports that keep the labels: Label Studio and Argilla annotations arrive as judgments of imported raters.

The fixture files (tests/collect/fixtures/imports) follow each tool's documented export shape;
every expected value here is worked out from the fixture file itself, not from the importer.
"""

import json
import logging

import datasets
import pytest
from sqlalchemy import select

from collect.export import main as export_main
from collect.services.export.items import load_items
from collect.services.export.records import judgment_records
from collect.services.export.rows import ExportArguments
from collect.store import (
    Campaign,
    Candidate,
    Prompt,
    Rater,
    RaterError,
    StoreError,
    campaign_by_name,
    create_rater,
    open_store,
)
from plumb.data import DataError
from tests.support.imports import (
    empty_store_copy,
    fixture_path,
    fixture_records,
    import_into,
    stored_judgments,
    table_counts,
    winner_text,
)

RLHF = "label_studio_rlhf.json"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Where the module's empty store is made once (copied for each test)."""
    return tmp_path_factory.mktemp("template") / "empty.sqlite"


@pytest.fixture
def db(template, tmp_path):
    """An empty store of this test's own."""
    return empty_store_copy(template, tmp_path)


def label_studio_choices(name: str) -> dict:
    """{(prompt id, rater): the preferred answer's text} from a Label Studio pairwise export's own annotations."""
    choices = {}
    for task in fixture_records(name):
        data = task["data"]
        first, second = ("answer1", "answer2") if "answer1" in data else ("text1", "text2")
        for annotation in task["annotations"]:
            if annotation["was_cancelled"]:
                continue
            user = annotation["completed_by"]
            user = user["email"] if isinstance(user, dict) else user
            selected = annotation["result"][0]["value"]["selected"]
            choices[(f"label-studio-{task['id']}", f"label-studio:{user}")] = data[
                first if selected == "left" else second
            ]
    return choices


def test_a_label_studio_rlhf_export_arrives_as_judgments_that_exports_and_quality_read(db, tmp_path):
    tasks = fixture_records(RLHF)
    expected = label_studio_choices(RLHF)
    users = {a["completed_by"] for t in tasks for a in t["annotations"]}
    counts = import_into(db, tmp_path, fixture_path(RLHF))
    assert (len(tasks), len(users), len(expected)) == (3, 2, 6)
    assert counts["format"] == "label-studio" and counts["prompts"] == len(tasks) and counts["candidates"] == 6
    assert counts["judgments"] == counts["annotations"] == len(expected)
    assert counts["imported_raters"] == counts["new_raters"] == len(users) and counts["unannotated"] == 0

    judgments = stored_judgments(db)
    assert {(j["prompt"], j["rater"]): winner_text(j) for j in judgments} == expected
    assert {j["kind"] for j in judgments} == {"imported"}
    assert {abs(j["preference"]) for j in judgments} == {2}  # a choice says which, not by how much: "A better"

    # The pairwise export's majority: both annotators agree on tasks 1 and 2, and split on task 3.
    agreed = {}
    for (prompt, _), text in expected.items():
        agreed.setdefault(prompt, set()).add(text)
    summary = export_main(ExportArguments(campaign="moved-in", db=db, output_dir=str(tmp_path / "pairs"), test_size=0))
    rows = datasets.load_dataset(str(tmp_path / "pairs"), split="train").to_list()
    exported = {row["meta"]["prompt_id"]: row["chosen"][-1]["content"] for row in rows}
    assert exported == {prompt: texts.pop() for prompt, texts in agreed.items() if len(texts) == 1}
    assert (
        summary["judgments_by_rater_kind"].get("imported") == len(expected) and sum(summary["left_out"].values()) == 1
    )

    # The judgment records `plumb collect quality` reads carry every annotation, by its rater.
    sessions = open_store(db)
    with sessions() as session:
        records, _ = judgment_records(load_items(session, campaign_by_name(session=session, name="moved-in").id))
    sessions.kw["bind"].dispose()
    assert sorted((r["rater"], r["choice"]) for r in records) == sorted(
        (rater, "left" if text == fixture_answer(prompt, "first") else "right")
        for (prompt, rater), text in expected.items()
    )


def fixture_answer(prompt_id: str, which: str) -> str:
    """The first or second answer text of a task of the RLHF fixture (the order the task shows them in)."""
    task = next(t for t in fixture_records(RLHF) if f"label-studio-{t['id']}" == prompt_id)
    return task["data"]["answer1" if which == "first" else "answer2"]


def test_the_pairwise_classification_template_has_no_prompt_and_counts_what_it_skips(db, tmp_path, caplog):
    name = "label_studio_pairwise_classification.json"
    tasks = fixture_records(name)
    cancelled = sum(a["was_cancelled"] for t in tasks for a in t["annotations"])
    unannotated = sum(not any(not a["was_cancelled"] for a in t["annotations"]) for t in tasks)
    with caplog.at_level(logging.WARNING, logger="collect.services.campaign_import"):
        counts = import_into(db, tmp_path, fixture_path(name))
    expected = label_studio_choices(name)
    assert counts["prompts"] == len(tasks) and counts["judgments"] == len(expected) == 2
    assert counts["unannotated"] == unannotated == 1
    assert counts["left_out"] == {"cancelled annotation (skipped in Label Studio)": cancelled}
    assert f"{unannotated} of {len(tasks)} label-studio rows have no annotations" in caplog.text
    assert {(j["prompt"], j["rater"]): winner_text(j) for j in stored_judgments(db)} == expected
    sessions = open_store(db)
    with sessions() as session:
        prompts = session.scalars(select(Prompt.messages)).all()
    sessions.kw["bind"].dispose()
    assert prompts == [[{"role": "user", "content": "Select one of two items"}]] * len(tasks)  # the template's header


def ranker_orders() -> dict:
    """{(prompt id, rater): {item text: rank}} from the LLM Ranker export: 1 = first in the list or first bucket."""
    orders = {}
    for task in fixture_records("label_studio_llm_ranker.json"):
        bodies = {item["id"]: item["body"] for item in task["data"]["items"]}
        for annotation in task["annotations"]:
            ranked = annotation["result"][0]["value"]["ranker"]
            if isinstance(ranked, dict):
                ranked = [i for bucket, ids in ranked.items() if bucket != "_" for i in ids]
            key = (f"label-studio-{task['id']}", f"label-studio:{annotation['completed_by']}")
            orders[key] = {bodies[i]: rank for rank, i in enumerate(ranked, start=1)}
    return orders


def test_the_llm_ranker_template_gives_rankings_or_their_pairs(db, tmp_path):
    name = "label_studio_llm_ranker.json"
    orders, items = ranker_orders(), {f"label-studio-{t['id']}": len(t["data"]["items"]) for t in fixture_records(name)}
    complete = {key: order for key, order in orders.items() if len(order) == items[key[0]]}
    counts = import_into(db, tmp_path, fixture_path(name), kind="ranking", name="ranked")
    assert counts["annotations"] == len(orders) == 3 and counts["judgments"] == len(complete) == 2
    assert counts["left_out"] == {
        "model prediction (not a person's annotation)": 1,
        "ranks only some of the candidates (a ranking task needs all)": len(orders) - len(complete),
    }
    found = {(j["prompt"], j["rater"]): dict(zip(j["texts"], j["ranks"])) for j in stored_judgments(db, "ranked")}
    assert found == complete

    counts = import_into(db, tmp_path, fixture_path(name), kind="pairwise", name="paired")
    pairs = sum(len(order) * (len(order) - 1) // 2 for order in orders.values())  # pairs both of whose items are ranked
    assert counts["judgments"] == pairs == 7
    for judgment in stored_judgments(db, "paired"):
        order = orders[(judgment["prompt"], judgment["rater"])]
        assert winner_text(judgment) == min(judgment["texts"], key=order.get)


def argilla_v1_answers(name: str, question: str) -> dict:
    """{(record id, rater): {field text: rank}} of the submitted answers of a 1.x ranking question."""
    answers = {}
    for record in fixture_records(name):
        for answer in record[question]:
            if answer["status"] == "submitted":
                ranks = {record[item["value"]]: item["rank"] for item in answer["value"]}
                answers[(f"argilla-{record['external_id']}", f"argilla:{answer['user_id']}")] = ranks
    return answers


def test_an_argilla_1x_file_whose_first_record_is_unanswered_keeps_every_candidate(db, tmp_path):
    name = "argilla_v1_ranking.jsonl"
    records, answers = fixture_records(name), argilla_v1_answers(name, "preference")
    assert records[0]["preference"] == [] and "response" not in "".join(records[0])  # fields not named response-*
    counts = import_into(db, tmp_path, fixture_path(name))
    assert counts["format"] == "argilla" and counts["candidates"] == 2 * len(records)
    assert counts["judgments"] == len(answers) == 3
    assert counts["unannotated"] == sum(not any(a["status"] == "submitted" for a in r["preference"]) for r in records)
    assert counts["left_out"] == {"discarded answer (not submitted)": 1}
    for judgment in stored_judgments(db):
        ranks = answers[(judgment["prompt"], judgment["rater"])]
        best = [text for text, rank in ranks.items() if rank == min(ranks.values())]
        assert winner_text(judgment) == (best[0] if len(best) == 1 else None)


def test_argilla_1x_rating_questions_per_response_become_ratings(db, tmp_path):
    name = "argilla_v1_ratings.jsonl"
    expected = {}
    for index, record in enumerate(fixture_records(name)):
        for field_name in ("generations-1", "generations-2"):
            for answer in record[f"{field_name}-rating"]:
                key = (f"argilla-{index}", f"argilla:{answer['user_id']}")
                expected.setdefault(key, {})[record[field_name]] = answer["value"]
    counts = import_into(db, tmp_path, fixture_path(name), kind="rating", name="rated")
    assert counts["judgments"] == len(expected) == 3 and counts["unannotated"] == 1
    found = {(j["prompt"], j["rater"]): dict(zip(j["texts"], j["ratings"])) for j in stored_judgments(db, "rated")}
    assert found == expected


def test_argilla_2x_responses_and_a_2x_file_nobody_answered(db, tmp_path, caplog):
    name = "argilla_v2_ranking.jsonl"
    records = fixture_records(name)
    expected = {}
    for record in records:
        for order, user, status in zip(
            *(record[f"ranking.responses{s}"] or [] for s in ("", ".users", ".status")), strict=True
        ):
            if status == "submitted":
                expected[(f"argilla-{record['id']}", f"argilla:{user}")] = record[order[0]]
    counts = import_into(db, tmp_path, fixture_path(name))
    assert counts["candidates"] == 2 * len(records)  # the `source` metadata column is no response
    assert counts["judgments"] == len(expected) == 2 and counts["left_out"] == {"draft answer (not submitted)": 1}
    assert {(j["prompt"], j["rater"]): winner_text(j) for j in stored_judgments(db)} == expected

    # The nested layout (`to_list()`, `to_json`) holds the same answers; an optional field left empty drops a response.
    nested = [
        {
            "id": r["id"],
            "_server_id": r["_server_id"],
            "fields": {"prompt": r["prompt"], "response1": r["response1"], "response2": r["response2"]},
            "metadata": {"source": r["source"]},
            "responses": {
                "ranking": [
                    {"value": v, "user_id": u, "status": s}
                    for v, u, s in zip(*(r[f"ranking.responses{x}"] or [] for x in ("", ".users", ".status")))
                ]
            },
            "suggestions": {},
            "vectors": {},
        }
        for r in records
    ]
    nested[1]["fields"]["response2"] = None
    source = tmp_path / "records.json"
    source.write_text(json.dumps(nested))
    counts = import_into(db, tmp_path, source, name="nested")
    assert counts["candidates"] == 2 * len(records) - 1 and counts["judgments"] == len(expected)
    assert counts["left_out"] == {"draft answer (not submitted)": 1, "empty response field": 1}
    assert {(j["prompt"], j["rater"]): winner_text(j) for j in stored_judgments(db, "nested")} == expected

    unanswered = fixture_records("argilla_v2_unanswered.jsonl")
    with caplog.at_level(logging.WARNING, logger="collect.services.campaign_import"):
        counts = import_into(db, tmp_path, fixture_path("argilla_v2_unanswered.jsonl"), name="fresh")
    assert counts["candidates"] == 2 * len(unanswered) and counts["judgments"] == counts["imported_raters"] == 0
    assert counts["unannotated"] == len(unanswered) and "have no annotations" in caplog.text


def test_labels_that_cannot_fit_the_campaign_kind_are_refused_naming_both(db, tmp_path):
    with pytest.raises(DataError, match=r"label-studio judgments into rating campaign 'moved-in'"):
        import_into(db, tmp_path, fixture_path(RLHF), kind="rating")
    assert table_counts(db, Campaign, Rater, Candidate) == [0, 0, 0]


def test_a_bad_row_names_its_row_and_field_and_nothing_is_stored(db, tmp_path):
    tasks = fixture_records(RLHF)
    tasks[2]["annotations"][1]["result"][0]["value"]["selected"] = "middle"
    source = tmp_path / "export.json"
    source.write_text(json.dumps(tasks))
    with pytest.raises(DataError, match=r"task 3 \(row 2\): annotation 16: field 'value.selected'"):
        import_into(db, tmp_path, source)
    assert table_counts(db, Campaign, Rater, Candidate) == [0, 0, 0]


def test_an_annotator_whose_name_a_person_holds_is_refused_and_imported_raters_have_no_password(db, tmp_path):
    sessions = open_store(db)
    with sessions.begin() as session:
        create_rater(session=session, name="label-studio:2", password="secret")
        with pytest.raises(RaterError, match="has no password"):
            create_rater(session=session, name="someone", kind="imported", password="x")
    sessions.kw["bind"].dispose()
    with pytest.raises(StoreError, match="'label-studio:2' exists and is not an imported rater"):
        import_into(db, tmp_path, fixture_path(RLHF))
    assert table_counts(db, Campaign, Rater, Candidate) == [0, 1, 0]


def test_a_second_import_reuses_the_imported_raters(db, tmp_path):
    import_into(db, tmp_path, fixture_path(RLHF))
    tasks = [{**task, "id": task["id"] + 100} for task in fixture_records(RLHF)]
    source = tmp_path / "second.json"
    source.write_text(json.dumps(tasks))
    counts = import_into(db, tmp_path, source, name="second")
    assert counts["imported_raters"] == 2 and counts["new_raters"] == 0 and counts["judgments"] == 6
    assert table_counts(db, Rater) == [2]


def test_a_label_field_must_name_one_of_the_sources_labels(db, tmp_path):
    with pytest.raises(DataError, match=r"no question 'quality' \(questions: preference\)"):
        import_into(db, tmp_path, fixture_path("argilla_v1_ranking.jsonl"), label_field="quality")
    with pytest.raises(DataError, match="a label field applies to argilla, ultrafeedback, helpsteer sources"):
        import_into(db, tmp_path, fixture_path(RLHF), label_field="helpfulness")
    assert table_counts(db, Campaign, Rater) == [0, 0]
