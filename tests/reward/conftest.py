"""Reward-stage fixtures: a reward model trained two steps on the tiny BERT, for the eval, score and push tests."""

import pytest

from tests.support.reward import reward_train_args


@pytest.fixture(scope="session")
def trained_reward_dir(tmp_path_factory, tiny_reward_dir):
    """A tiny BERT reward model trained for two steps on builtin:prefs (folder with card, config, eval report)."""
    from reward.train import main

    output_dir = tmp_path_factory.mktemp("trained_reward") / "model"
    main(*reward_train_args(output_dir, tiny_reward_dir))
    return output_dir
