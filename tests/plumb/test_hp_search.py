"""The search-space grammar of plumb/hp_search.py, and the values it draws through a real Optuna trial."""

import math

import optuna
import pytest

from plumb.config import ConfigError
from plumb.hp_search import parse_space, suggest

SUPPORTED = {"learning_rate", "num_train_epochs", "beta", "lora_r", "warmup_steps"}


def test_specs_parse_into_ranges_and_choices():
    space = parse_space(
        {
            "learning_rate": {"low": 1e-5, "high": 1e-3, "log": True},
            "num_train_epochs": {"choices": [1, 2, 3]},
            "beta": {"low": 0.05, "high": 0.5},
            "warmup_steps": {"low": 0, "high": 10, "step": 5},
        },
        where="run.yaml",
        supported=SUPPORTED,
    )
    assert space["learning_rate"] == {"low": 1e-5, "high": 1e-3, "log": True, "step": None, "int": False}
    assert space["num_train_epochs"] == {"choices": [1, 2, 3]}
    assert space["beta"]["int"] is False and space["warmup_steps"]["int"] is True


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"low": 1e-3}, "needs both low and high"),
        ({"low": 0.5, "high": 0.1}, r"low \(0.5\) must be below high \(0.1\)"),
        ({"low": 0, "high": 1, "log": True}, "log range needs low > 0"),
        ({"low": "a", "high": 1}, "low must be a number"),
        ({"choices": []}, "non-empty list"),
        ({"choices": [1], "low": 0}, "cannot be combined"),
        ({"min": 1, "max": 2}, "unknown spec field"),
        (0.1, "expected"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_key_and_the_file(spec, message):
    with pytest.raises(ConfigError, match=rf"^run\.yaml: hp_space key 'beta'.*{message}"):
        parse_space({"beta": spec}, where="run.yaml", supported=SUPPORTED)


def test_an_unsupported_key_or_an_empty_space_is_refused():
    refused = r"run\.yaml: hp_space key 'gamma' cannot be searched here; searchable keys: beta, learning_rate"
    with pytest.raises(ConfigError, match=refused):
        parse_space({"gamma": {"low": 0, "high": 1}}, where="run.yaml", supported=SUPPORTED)
    with pytest.raises(ConfigError, match="non-empty mapping"):
        parse_space({}, where="run.yaml", supported=SUPPORTED)


def test_drawn_values_stay_in_their_spec_and_repeat_within_a_trial():
    space = parse_space(
        {
            "learning_rate": {"low": 1e-5, "high": 1e-3, "log": True},
            "lora_r": {"choices": [8, 16]},
            "warmup_steps": {"low": 0, "high": 10, "step": 5},
        },
        where="run.yaml",
        supported=SUPPORTED,
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        values = suggest(trial, space)
        assert suggest(trial, space) == values  # model_init and hp_space both ask; they must agree
        assert 1e-5 <= values["learning_rate"] <= 1e-3 and values["lora_r"] in (8, 16)
        assert values["warmup_steps"] in (0, 5, 10) and isinstance(values["warmup_steps"], int)
        study.tell(trial, math.log(values["learning_rate"]))
    # a log range is drawn uniformly in log space: over 20 draws both decades are visited
    draws = [t.params["learning_rate"] for t in study.trials]
    assert min(draws) < 1e-4 < max(draws)
