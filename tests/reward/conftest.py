"""Reward-stage fixtures: a reward model trained two steps on the tiny BERT, for the eval, score and push tests."""

import pytest

from plumb.config import parse_config


def reward_train_args(output_dir, model_dir, *flags):
    """Parsed `plumb reward train` arguments for a 2-step run on a tiny model, with `flags` appended."""
    from reward.train import config_types

    return parse_config(
        config_types(),
        [
            "--model_name_or_path",
            str(model_dir),
            "--output_dir",
            str(output_dir),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--per_device_eval_batch_size",
            "16",
            "--max_length",
            "64",
            "--learning_rate",
            "1e-2",
            "--report_to",
            "none",
            "--save_strategy",
            "no",
            "--logging_steps",
            "1",
            "--seed",
            "0",
            "--bootstrap_samples",
            "200",
            *flags,
        ],
    )


@pytest.fixture(scope="session")
def trained_reward_dir(tmp_path_factory, tiny_reward_dir):
    """A tiny BERT reward model trained for two steps on builtin:prefs (folder with card, config, eval report)."""
    from reward.train import main

    output_dir = tmp_path_factory.mktemp("trained_reward") / "model"
    main(*reward_train_args(output_dir, tiny_reward_dir))
    return output_dir
