"""`plumb reward score`: one model or an ensemble, on pairwise, unpaired and ranking data, written as columns."""

import json

import numpy as np
import pytest

from plumb.data import DataError, read_jsonl
from reward.config import ScoreArguments
from reward.score import load_reward_model, main, score_conversations, trained_max_length
from tests.support.reward import HandScorer


def test_pairs_scored_by_an_ensemble_get_mean_and_spread(trained_reward_dir, tiny_reward_dir, tmp_path):
    output = tmp_path / "scored.jsonl"
    scored = main(
        ScoreArguments(
            model_name_or_path=f"{trained_reward_dir},{tiny_reward_dir}",
            dataset_name="builtin:prefs",
            output_path=str(output),
            batch_size=8,
        )
    )
    assert {"chosen_reward", "rejected_reward", "chosen_reward_std", "rejected_reward_std", "reward_margin_std"} <= set(
        scored.column_names
    )
    written = read_jsonl(output)
    assert len(written) == 57

    # every row against its own two members' scores, each conversation scored alone and cut at the first
    # member's training max_length (64); the std of two values is half their distance
    members = [HandScorer(path, trained_reward_dir, max_length=64) for path in (trained_reward_dir, tiny_reward_dir)]
    (chosen_a, rejected_a), (chosen_b, rejected_b) = (member.pairs(written) for member in members)
    assert len(np.unique(chosen_a)) > 1 and len(np.unique(chosen_b)) > 1
    for column, expected in {
        "chosen_reward": (chosen_a + chosen_b) / 2,
        "rejected_reward": (rejected_a + rejected_b) / 2,
        "chosen_reward_std": np.abs(chosen_a - chosen_b) / 2,
        "rejected_reward_std": np.abs(rejected_a - rejected_b) / 2,
        "reward_margin_std": np.abs((chosen_a - rejected_a) - (chosen_b - rejected_b)) / 2,
    }.items():
        assert written[column] == pytest.approx(expected.tolist(), abs=1e-6), column
        assert scored[column] == pytest.approx(written[column], abs=1e-7), column


def test_batching_does_not_change_scores(trained_reward_dir):
    reward_model = load_reward_model(str(trained_reward_dir))
    conversations = [
        [{"role": "user", "content": "Hi " * n}, {"role": "assistant", "content": "Hello"}] for n in (1, 9, 3, 20)
    ]
    one_by_one = score_conversations(reward_model, conversations, batch_size=1, progress=False)
    batched = score_conversations(reward_model, conversations, batch_size=4, progress=False)
    assert batched == pytest.approx(one_by_one, abs=1e-4)


def test_completions_and_rankings_get_each_their_own_reward(trained_reward_dir, tmp_path):
    def reply(text):
        return [{"role": "assistant", "content": text}]

    hand = HandScorer(trained_reward_dir, max_length=64)
    prompts = [[{"role": "user", "content": "Hi"}], [{"role": "user", "content": "Name a fruit."}]]
    unpaired = tmp_path / "kto.jsonl"
    rows = [
        {"prompt": prompts[0], "completion": reply("Hello!"), "label": True},
        {"prompt": prompts[1], "completion": reply("A brick."), "label": False},
        {"prompt": prompts[1], "completion": reply("An apple."), "label": True},
    ]
    unpaired.write_text("\n".join(json.dumps(row) for row in rows))
    scored = main(
        ScoreArguments(
            model_name_or_path=str(trained_reward_dir),
            dataset_name=str(unpaired),
            output_path=str(tmp_path / "a.parquet"),
            column="score",
        )
    )
    expected = [hand(row["prompt"] + row["completion"]) for row in rows]
    assert len(set(expected)) == 3
    assert scored["score"] == pytest.approx(expected, abs=1e-6)

    # rankings of different sizes: each completion's reward lands on its own row, in its own place
    ranking = tmp_path / "ranking.jsonl"
    rows = [
        {
            "prompt": prompts[0],
            "completions": [reply("Hello!"), reply("Go away."), reply("Hi there.")],
            "ranks": [1, 3, 2],
        },
        {"prompt": prompts[1], "completions": [reply("An apple."), reply("A brick.")], "ranks": [1, 2]},
    ]
    ranking.write_text("\n".join(json.dumps(row) for row in rows))
    scored = main(
        ScoreArguments(
            model_name_or_path=str(trained_reward_dir), dataset_name=str(ranking), output_path=str(tmp_path / "b.jsonl")
        )
    )
    expected = [[hand(row["prompt"] + completion) for completion in row["completions"]] for row in rows]
    assert len({score for scores in expected for score in scores}) == 5
    assert [len(scores) for scores in scored["reward"]] == [3, 2]
    for got, want in zip(scored["reward"], expected):
        assert got == pytest.approx(want, abs=1e-6)


def test_data_without_responses_is_refused(trained_reward_dir, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Hi", "prompt_id": "1"}))
    with pytest.raises(DataError, match="no responses to score"):
        main(
            ScoreArguments(
                model_name_or_path=str(trained_reward_dir),
                dataset_name=str(prompts),
                output_path=str(tmp_path / "out.jsonl"),
            )
        )


def test_scoring_cuts_inputs_as_training_did(trained_reward_dir, tmp_path):
    assert trained_max_length(str(trained_reward_dir)) == 64  # the fixture trained with --max_length 64
    assert trained_max_length(str(tmp_path)) == 512
