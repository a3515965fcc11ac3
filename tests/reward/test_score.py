"""`plumb reward score`: one model or an ensemble, on pairwise, unpaired and ranking data, written as columns."""

import json

import numpy as np
import pytest

from plumb.data import DataError, read_jsonl
from reward.config import ScoreArguments
from reward.score import load_reward_model, main, score_conversations, trained_max_length


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
    assert len(written) == 57 and written[0]["chosen_reward"] == pytest.approx(scored[0]["chosen_reward"])

    # the ensemble mean is the mean of the two members' own scores
    conversation = written[0]["prompt"] + written[0]["chosen"]
    members = [
        score_conversations(load_reward_model(path), [conversation], progress=False)[0]
        for path in (str(trained_reward_dir), tiny_reward_dir)
    ]
    assert written[0]["chosen_reward"] == pytest.approx(np.mean(members), abs=1e-5)
    assert written[0]["chosen_reward_std"] == pytest.approx(np.std(members), abs=1e-5)


def test_batching_does_not_change_scores(trained_reward_dir):
    reward_model = load_reward_model(str(trained_reward_dir))
    conversations = [
        [{"role": "user", "content": "Hi " * n}, {"role": "assistant", "content": "Hello"}] for n in (1, 9, 3, 20)
    ]
    one_by_one = score_conversations(reward_model, conversations, batch_size=1, progress=False)
    batched = score_conversations(reward_model, conversations, batch_size=4, progress=False)
    assert batched == pytest.approx(one_by_one, abs=1e-4)


def test_completions_and_rankings_get_a_reward_column(trained_reward_dir, tmp_path):
    prompt = [{"role": "user", "content": "Hi"}]
    reply = [{"role": "assistant", "content": "Hello!"}]
    unpaired = tmp_path / "kto.jsonl"
    unpaired.write_text(json.dumps({"prompt": prompt, "completion": reply, "label": True}))
    scored = main(
        ScoreArguments(
            model_name_or_path=str(trained_reward_dir),
            dataset_name=str(unpaired),
            output_path=str(tmp_path / "a.parquet"),
            column="score",
        )
    )
    assert isinstance(scored[0]["score"], float)

    ranking = tmp_path / "ranking.jsonl"
    ranking.write_text(json.dumps({"prompt": prompt, "completions": [reply, reply, reply], "ranks": [1, 2, 2]}))
    scored = main(
        ScoreArguments(
            model_name_or_path=str(trained_reward_dir), dataset_name=str(ranking), output_path=str(tmp_path / "b.jsonl")
        )
    )
    assert len(scored[0]["reward"]) == 3


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
