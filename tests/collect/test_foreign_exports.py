"""Moving in from Label Studio and Argilla: their preference exports become prompts with two candidates."""

import json

import pytest
from sqlalchemy import func, select

from collect import import_prompts
from collect.domain.foreign_exports import detect_format, to_import_rows
from collect.init import main as init_main
from collect.store import Candidate, Prompt, open_store
from plumb.data import DataError

# The JSON export of Label Studio's "human preference" (RLHF) template: <Pairwise toName="answer1,answer2">.
LABEL_STUDIO = [
    {
        "id": 7,
        "data": {"prompt": "Name a primary colour.", "answer1": "Red.", "answer2": "Seven."},
        "annotations": [
            {
                "id": 1,
                "completed_by": 3,
                "result": [
                    {
                        "from_name": "comparison",
                        "to_name": "answer1,answer2",
                        "type": "pairwise",
                        "value": {"selected": "left"},
                    }
                ],
            }
        ],
    },
    {"id": 8, "data": {"prompt": "What is 2 + 2?", "answer1": "5", "answer2": "4"}, "annotations": []},
]
# Argilla 1.x FeedbackDataset on the Hub: fields as columns, the ranking question as a list of user answers.
ARGILLA_V1 = [
    {
        "prompt": "Say hi.",
        "response1": "Hi!",
        "response2": "Go away.",
        "external_id": "r1",
        "preference": [
            {
                "user_id": "u1",
                "status": "submitted",
                "value": [{"rank": 1, "value": "response1"}, {"rank": 2, "value": "response2"}],
            }
        ],
    },
]
# Argilla 2.x `to_hub`: QUESTION.responses holds one answer per user.
ARGILLA_V2 = [
    {
        "id": "a",
        "prompt": "Capital of France?",
        "response1": "Lyon.",
        "response2": "Paris.",
        "preference.responses": [[{"value": "response2", "rank": 1}, {"value": "response1", "rank": 2}]],
        "preference.responses.users": ["u9"],
    },
]


def test_formats_are_recognised():
    assert detect_format(LABEL_STUDIO) == "label-studio"
    assert detect_format(ARGILLA_V1) == detect_format(ARGILLA_V2) == "argilla"
    assert detect_format([{"prompt": "x", "candidates": []}]) == "plumb"


def test_label_studio_tasks_become_prompts_with_both_answers():
    rows = to_import_rows(LABEL_STUDIO, source="ls.json")
    assert rows[0] == {
        "prompt_id": "label-studio-7",
        "prompt": "Name a primary colour.",
        "candidates": [
            {"policy": "label-studio:answer1", "completion": "Red."},
            {"policy": "label-studio:answer2", "completion": "Seven."},
        ],
    }
    assert [c["completion"] for c in rows[1]["candidates"]] == ["5", "4"]  # unannotated: the two text fields


@pytest.mark.parametrize("records", [ARGILLA_V1, ARGILLA_V2], ids=["argilla-1.x", "argilla-2.x"])
def test_argilla_records_become_prompts_with_the_ranked_responses(records):
    row = to_import_rows(records, source="argilla")[0]
    assert row["prompt"] == records[0]["prompt"]
    assert {c["policy"] for c in row["candidates"]} == {"argilla:response1", "argilla:response2"}


def test_a_task_without_a_prompt_field_is_named():
    with pytest.raises(DataError, match=r"ls\.json: task 9 \(row 0\): no prompt field"):
        to_import_rows([{"id": 9, "data": {"a": "x", "b": "y"}, "annotations": []}], source="ls.json")


def test_label_studio_export_imports_into_a_campaign(tmp_path):
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    export = tmp_path / "project-1-at-2026.json"
    export.write_text(json.dumps(LABEL_STUDIO))
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text("name: moved-in\n")
    counts = import_prompts.main(str(campaign), source=str(export), db=db)
    assert counts["prompts"] == 2 and counts["candidates"] == 4
    with open_store(db)() as session:
        assert session.scalar(select(func.count()).select_from(Prompt)) == 2
        assert session.scalar(select(func.count()).select_from(Candidate)) == 4
