"""The data contract: loading, validation errors that name row and field, and conversions."""

import gzip
import json

import pytest
from datasets import Dataset

from plumb.data import (
    DataError,
    detect_kind,
    load_contract,
    load_records,
    load_train_test,
    messages_to_prompt_completion,
    prompt_key,
    ranking_pairs,
    ranking_to_pairs,
    read_jsonl,
    to_conversational,
    to_standard,
    validate,
)


def msgs(*pairs):
    return [{"role": role, "content": content} for role, content in pairs]


PROMPT = msgs(("user", "Name a colour."))
GOOD = msgs(("assistant", "Blue."))
BAD = msgs(("assistant", "Seven."))


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def test_shipped_instruction_set_meets_the_contract():
    train, test = load_train_test("builtin:instruct", "sft")
    assert len(train) >= 200 and len(test) >= 20
    train_users = {row["messages"][0]["content"] for row in train}
    assert not train_users & {row["messages"][0]["content"] for row in test}


def test_missing_column_is_named():
    data = Dataset.from_list([{"prompt": PROMPT, "chosen": GOOD}])
    with pytest.raises(DataError, match="missing column.*rejected"):
        validate(data, "pairwise", source="prefs.jsonl")


@pytest.mark.parametrize(
    "row, field",
    [
        ({"prompt": PROMPT, "chosen": [], "rejected": BAD}, "chosen"),
        ({"prompt": PROMPT, "chosen": GOOD, "rejected": msgs(("assistant", "  "))}, "rejected"),
        ({"prompt": PROMPT, "chosen": GOOD, "rejected": msgs(("robot", "x"))}, "rejected"),
        ({"prompt": PROMPT, "chosen": GOOD, "rejected": BAD, "margin": "big"}, "margin"),
        ({"prompt": "Name a colour.", "chosen": GOOD, "rejected": BAD}, "rejected"),
    ],
)
def test_pairwise_row_error_names_row_and_field(tmp_path, row, field):
    good = {"prompt": PROMPT, "chosen": GOOD, "rejected": BAD}
    path = write_jsonl(tmp_path / "prefs.jsonl", [good, good, row])
    with pytest.raises(DataError, match=rf"prefs\.jsonl \[train\]: line 3: field '{field}'"):
        load_contract(str(path), "pairwise")


def test_row_missing_a_field_is_named(tmp_path):
    path = write_jsonl(
        tmp_path / "prefs.jsonl",
        [{"prompt": PROMPT, "chosen": GOOD, "rejected": BAD}, {"prompt": PROMPT, "chosen": GOOD}],
    )
    with pytest.raises(DataError, match="line 2: field 'rejected' is missing"):
        load_contract(str(path), "pairwise")


def test_a_bad_row_and_bad_json_name_the_line_the_same_way(tmp_path):
    # Before: the contract check said "row 1" (0-based, blank lines skipped) for what the JSON reader calls "line 3".
    good = json.dumps({"prompt": PROMPT, "chosen": GOOD, "rejected": BAD})
    path = tmp_path / "prefs.jsonl"
    path.write_text(f"{good}\n\n{json.dumps({'prompt': PROMPT, 'chosen': GOOD})}\n")
    with pytest.raises(DataError, match=r"prefs\.jsonl \[train\]: line 3: field 'rejected' is missing"):
        load_contract(str(path), "pairwise")
    path.write_text(f"{good}\n\n{{not json\n")
    with pytest.raises(DataError, match=r"prefs\.jsonl: line 3: not valid JSON"):
        load_contract(str(path), "pairwise")


def test_a_column_missing_from_the_first_row_is_kept(tmp_path):
    rows = [
        {"prompt": PROMPT, "chosen": GOOD, "rejected": BAD},
        {"prompt": PROMPT, "chosen": GOOD, "rejected": BAD, "margin": 2.0},
    ]
    data = load_contract(str(write_jsonl(tmp_path / "prefs.jsonl", rows)), "pairwise")
    assert data["margin"][:] == [None, 2.0]


def test_mixed_types_outside_the_contract_name_the_column(tmp_path):
    path = write_jsonl(
        tmp_path / "prefs.jsonl",
        [
            {"prompt": PROMPT, "chosen": GOOD, "rejected": BAD, "meta": 1},
            {"prompt": PROMPT, "chosen": GOOD, "rejected": BAD, "meta": "x"},
        ],
    )
    with pytest.raises(DataError, match="column 'meta' mixes"):
        load_contract(str(path), "pairwise")


def test_ranking_and_unpaired_and_sft_errors():
    ranking = Dataset.from_list([{"prompt": PROMPT, "completions": [GOOD, BAD], "ranks": [1]}])
    with pytest.raises(DataError, match="row 0: field 'ranks'"):
        validate(ranking, "ranking")
    unpaired = Dataset.from_list([{"prompt": "q", "completion": "a", "label": "yes"}])
    with pytest.raises(DataError, match="row 0: field 'label'"):
        validate(unpaired, "unpaired")
    sft = Dataset.from_list(
        [{"messages": msgs(("user", "hi"), ("assistant", "hello"))}, {"messages": msgs(("user", "hi"))}]
    )
    with pytest.raises(DataError, match="row 1: field 'messages'.*assistant"):
        validate(sft, "sft")


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"messages": []}\n{not json}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: line 2: not valid JSON"):
        read_jsonl(path)


def test_load_from_files_and_directories(tmp_path):
    rows = [{"prompt": msgs(("user", f"Name colour {i}.")), "chosen": GOOD, "rejected": BAD} for i in range(10)]
    jsonl = write_jsonl(tmp_path / "prefs.jsonl", rows)
    assert len(load_contract(str(jsonl), "pairwise")) == 10
    Dataset.from_list(rows).to_parquet(str(tmp_path / "prefs.parquet"))
    assert detect_kind(load_records(str(tmp_path / "prefs.parquet"))) == "pairwise"
    saved = tmp_path / "saved"
    Dataset.from_list(rows).save_to_disk(str(saved))
    assert len(load_records(str(saved))) == 10
    train, test = load_train_test(str(jsonl), "pairwise", test_size=0.2)
    assert (len(train), len(test)) == (8, 2)
    with pytest.raises(DataError, match="no such file"):
        load_records(str(tmp_path / "missing" / "x.jsonl"))


def test_ranking_expands_to_pairs_and_ties_give_none():
    # ranks 1, 2, 2, 3: 0 beats 1, 2, 3; 1 and 2 tie (no pair); both beat 3 -> 5 pairs
    assert sorted(ranking_pairs([1, 2, 2, 3])) == [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)]
    completions = [msgs(("assistant", t)) for t in "abcd"]
    data = Dataset.from_list([{"prompt": PROMPT, "completions": completions, "ranks": [3, 1, 2, 2]}])
    pairs = ranking_to_pairs(data)
    assert len(pairs) == 5
    chosen_rejected = {(p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs}
    assert chosen_rejected == {("b", "a"), ("b", "c"), ("b", "d"), ("c", "a"), ("d", "a")}
    validate(pairs, "pairwise")


def test_standard_and_conversational_round_trip():
    standard = Dataset.from_list([{"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Seven."}])
    conversational = to_conversational(standard)
    assert conversational[0]["prompt"] == PROMPT and conversational[0]["chosen"] == GOOD
    assert to_standard(conversational)[0] == standard[0]


def test_every_assistant_turn_becomes_a_completion():
    data = Dataset.from_list([{"messages": msgs(("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d"))}])
    rows = messages_to_prompt_completion(data)
    assert len(rows) == 2
    assert rows[1]["prompt"] == msgs(("user", "a"), ("assistant", "b"), ("user", "c"))
    assert rows[1]["completion"] == msgs(("assistant", "d"))


def test_several_accepted_kinds_pick_the_one_the_columns_fit(tmp_path):
    ranking = [{"prompt": PROMPT, "completions": [GOOD, BAD], "ranks": [1, 2]}]
    path = write_jsonl(tmp_path / "ranks.jsonl", ranking)
    assert load_contract(str(path), ("pairwise", "ranking")).column_names == ["prompt", "completions", "ranks"]
    with pytest.raises(DataError, match=r"fit none of the accepted kinds \(pairwise: prompt, chosen, rejected"):
        load_contract(str(write_jsonl(tmp_path / "sft.jsonl", [{"messages": PROMPT + GOOD}])), ("pairwise",))


def _export_like(tmp_path, prompts: int, pairs_per_prompt: int):
    """A saved dataset folder as `plumb collect export` writes it: one Dataset, several pairs per prompt."""
    rows = [
        {
            "prompt": msgs(("user", f"Question {p}?")),
            "chosen": msgs(("assistant", f"good {p}.{k}")),
            "rejected": msgs(("assistant", f"bad {p}.{k}")),
        }
        for p in range(prompts)
        for k in range(pairs_per_prompt)
    ]
    folder = tmp_path / "export"
    Dataset.from_list(rows).save_to_disk(str(folder))
    return folder


def test_a_saved_dataset_is_not_its_own_held_out_split(tmp_path):
    # 10 prompts x 3 pairs = 30 rows; test_size 0.2 holds out 2 whole prompts = 6 rows, the other 24 train.
    folder = _export_like(tmp_path, prompts=10, pairs_per_prompt=3)
    with pytest.raises(DataError, match="no split 'test'"):
        load_records(str(folder), "test")
    train, test = load_train_test(str(folder), "pairwise", test_size=0.2, seed=0)
    assert (len(train), len(test)) == (24, 6)
    train_prompts = {prompt_key(row) for row in train}
    test_prompts = {prompt_key(row) for row in test}
    assert len(test_prompts) == 2 and not train_prompts & test_prompts


def test_held_out_prompts_never_appear_in_training_whatever_the_seed(tmp_path):
    # Uneven groups: prompt p has p+1 pairs (1..8, 36 rows); a row-level split would cut groups in two.
    rows = [
        {"prompt": f"Question {p}?", "chosen": f"good {k}", "rejected": f"bad {k}"}
        for p in range(8)
        for k in range(p + 1)
    ]
    path = write_jsonl(tmp_path / "prefs.jsonl", rows)
    for seed in range(5):
        train, test = load_train_test(str(path), "pairwise", test_size=0.25, seed=seed)
        assert len(train) + len(test) == 36 and len(test) >= 9  # at least a quarter, in whole prompts
        assert not {row["prompt"] for row in train} & {row["prompt"] for row in test}


def test_prompt_key_ignores_case_and_spacing_but_not_words():
    assert prompt_key({"prompt": "Name  a colour."}) == prompt_key({"prompt": msgs(("user", "name a colour."))})
    assert prompt_key({"prompt": "Name a colour."}) != prompt_key({"prompt": "Name a color."})
    assert prompt_key({"messages": msgs(("user", "Hi"), ("assistant", "Hello"))}) == prompt_key({"prompt": "hi"})


HH_CHOSEN = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant: Mix flour, water, yeast."
HH_REJECTED = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant: No idea."


def test_hh_rlhf_pairs_gzipped_with_their_prompt_inside_load_as_multi_turn_pairs(tmp_path, caplog):
    path = tmp_path / "pairs.jsonl.gz"
    cut_off = {"chosen": "\n\nHuman: Hi\n\nAssistant: ", "rejected": "\n\nHuman: Hi\n\nAssistant: Hello."}
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"chosen": HH_CHOSEN, "rejected": HH_REJECTED}) + "\n" + json.dumps(cut_off) + "\n")
    (row,) = load_contract(str(path), "pairwise")  # the transcript that ends on an empty reply is left out, said
    assert "left out 1 of 2 pairs whose reply is empty" in caplog.text
    assert row["prompt"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How do I bake bread?"},
    ]
    assert row["chosen"] == [{"role": "assistant", "content": "Mix flour, water, yeast."}]
    assert row["rejected"] == [{"role": "assistant", "content": "No idea."}]


def test_implicit_prompts_in_message_lists_and_plain_strings_are_made_explicit(tmp_path):
    ask = {"role": "user", "content": "Sky colour?"}
    conversational = tmp_path / "conversational.parquet"
    Dataset.from_list(
        [
            {
                "chosen": [ask, {"role": "assistant", "content": "Blue."}],
                "rejected": [ask, {"role": "assistant", "content": "Green."}],
            }
        ]
    ).to_parquet(str(conversational))
    row = load_contract(str(conversational), "pairwise")[0]
    assert (row["prompt"], row["chosen"][0]["content"], row["rejected"][0]["content"]) == ([ask], "Blue.", "Green.")

    standard = tmp_path / "standard.csv.gz"
    with gzip.open(standard, "wt") as handle:
        handle.write("chosen,rejected\nThe sky is blue.,The sky is green.\n")
    row = load_contract(str(standard), ("pairwise", "ranking"))[0]
    # TRL's extract_prompt: split where they first differ, the space going with the answers.
    assert (row["prompt"], row["chosen"], row["rejected"]) == ("The sky is", " blue.", " green.")


def test_an_unknown_compressed_file_type_is_named(tmp_path):
    path = tmp_path / "pairs.txt.gz"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"pairs.txt.gz: unknown file type '.txt.gz'"):
        load_records(str(path))
