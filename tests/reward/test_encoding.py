"""Plumb's tokenization of pairs: the end of a long conversation survives, truncation is counted, bad rows are named."""

import datasets
import pytest

from plumb.data import DataError, validate
from plumb.models import default_reward_dir, load_tokenizer, prepare_encoder_tokenizer
from reward.encoding import encode_conversation, tokenize_pairs


@pytest.fixture(scope="module")
def encoder_tokenizer():
    return load_tokenizer(str(default_reward_dir()), encoder=True)


def long_conversation(last_reply: str) -> list[dict]:
    history = [{"role": "user", "content": "tell me about rivers " * 40}, {"role": "assistant", "content": "ok " * 40}]
    return history + [{"role": "user", "content": "and the sea?"}, {"role": "assistant", "content": last_reply}]


def test_encoder_input_keeps_cls_and_the_last_reply(encoder_tokenizer):
    ids, cut = encode_conversation(encoder_tokenizer, long_conversation("the ocean is salty"), max_length=32)
    assert cut and len(ids) == 32
    assert ids[0] == encoder_tokenizer.cls_token_id and ids[-1] == encoder_tokenizer.sep_token_id
    assert "the ocean is salty" in encoder_tokenizer.decode(ids)

    short, cut = encode_conversation(encoder_tokenizer, [{"role": "user", "content": "hi"}], max_length=32)
    assert not cut and short[0] == encoder_tokenizer.cls_token_id


def test_plain_chat_template_gives_the_same_ids_as_plumb(encoder_tokenizer):
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    ids, _ = encode_conversation(encoder_tokenizer, conversation, None)
    assert encoder_tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True)["input_ids"] == ids
    assert ids == encoder_tokenizer("user: Hi\nassistant: Hello!")["input_ids"]  # [CLS] ... [SEP], as BERT expects
    prepare_encoder_tokenizer(encoder_tokenizer)  # a second call changes nothing
    assert encode_conversation(encoder_tokenizer, conversation, None)[0] == ids


def test_decoder_input_keeps_the_end(tiny_policy_dir):
    tokenizer = load_tokenizer(tiny_policy_dir)
    ids, cut = encode_conversation(tokenizer, long_conversation("the ocean is salty"), max_length=24)
    assert cut and len(ids) == 24
    assert "the ocean is salty" in tokenizer.decode(ids)


def test_pairs_that_differ_only_at_the_end_stay_different(encoder_tokenizer):
    rows = [
        {
            "prompt": long_conversation("x")[:-1],
            "chosen": [{"role": "assistant", "content": "Salt water."}],
            "rejected": [{"role": "assistant", "content": "Go away."}],
            "margin": 2.0,
        }
    ]
    tokenized, count = tokenize_pairs(datasets.Dataset.from_list(rows), encoder_tokenizer, 32)
    assert count.pairs == 1 and count.truncated_pairs == 1 and count.identical_after_truncation == 0
    assert count.responses_cut == 0
    row = tokenized[0]
    assert row["chosen_ids"] != row["rejected_ids"] and row["margin"] == 2.0
    assert row["length"] == max(len(row["chosen_ids"]), len(row["rejected_ids"])) <= 32

    without_margin, _ = tokenize_pairs(datasets.Dataset.from_list(rows), encoder_tokenizer, 32, use_margin=False)
    assert "margin" not in without_margin.column_names


def pairs(*, standard=False, **changes):
    row = {
        "prompt": [{"role": "user", "content": "Hi"}],
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Go away."}],
    }
    if standard:  # TRL's plain-text form
        row = {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}
    return [row, {**row, **changes}]


def test_row_without_chosen_is_named():
    rows = pairs()
    del rows[1]["chosen"]
    with pytest.raises(DataError, match=r"prefs.jsonl.*row 1: field 'chosen'"):
        validate(datasets.Dataset.from_list(rows), "pairwise", source="prefs.jsonl")


@pytest.mark.parametrize(
    "field, empty, standard", [("chosen", [{"role": "assistant", "content": "  "}], False), ("rejected", "", True)]
)
def test_empty_response_is_named(field, empty, standard):
    with pytest.raises(DataError, match=rf"row 1: field '{field}': the response is empty"):
        validate(
            datasets.Dataset.from_list(pairs(standard=standard, **{field: empty})), "pairwise", source="prefs.jsonl"
        )


def test_truncation_counts_over_several_pairs(encoder_tokenizer):
    def message(role, text):
        return [{"role": role, "content": text}]

    rows = [
        # short: not cut
        {
            "prompt": message("user", "Hi"),
            "chosen": message("assistant", "Hello!"),
            "rejected": message("assistant", "No."),
        },
        # a long prompt is cut, the short responses are not, and they still differ
        {
            "prompt": long_conversation("x")[:-1],
            "chosen": message("assistant", "Salt water."),
            "rejected": message("assistant", "Go away."),
        },
        # two responses of ~45 tokens (longer than 32, not than 64) differing only in their first word: both cut,
        # and identical once cut
        {
            "prompt": message("user", "Talk."),
            "chosen": message("assistant", "Yes " + "blah " * 40),
            "rejected": message("assistant", "No " + "blah " * 40),
        },
    ]
    tokenized, count = tokenize_pairs(datasets.Dataset.from_list(rows), encoder_tokenizer, 32)
    assert count.as_metrics() == {
        "pairs": 3,
        "truncated_pairs": 2,
        "truncated_share": pytest.approx(2 / 3),
        "responses_cut_by_truncation": 2,
        "pairs_identical_after_truncation": 1,
    }
    assert [len(row["chosen_ids"]) for row in tokenized] == [
        len(encode_conversation(encoder_tokenizer, rows[0]["prompt"] + rows[0]["chosen"], None)[0]),
        32,
        32,
    ]
