"""The loop's config: every section is checked by its stage's own rules before any work starts."""

from pathlib import Path

import pytest
import yaml

from loop.config import LoopArguments
from loop.context import LoopRun
from loop.run import check_sections
from plumb.config import ConfigError, parse_config

REPO = Path(__file__).resolve().parents[2]


def loop_run(path) -> LoopRun:
    (args,) = parse_config((LoopArguments,), ["--config", str(path)])
    return LoopRun(args=args, config_path=str(path), manifest={"stages": {}})


def test_the_demo_config_and_every_section_of_it_parse():
    run = loop_run(REPO / "configs" / "loop" / "demo.yaml")
    check_sections(run)
    assert (run.args.rounds, run.args.algorithm, run.args.judge) == (2, "dpo", "gold")


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (
            "reward",
            {"learnig_rate": 0.1},
            r"section 'reward': unknown key 'learnig_rate' \(did you mean 'learning_rate'\?\)",
        ),
        ("dpo", {"beta": "high"}, r"section 'dpo': key 'beta': invalid value 'high'"),
        ("campaign", {"raters_per_task": 0}, r"section 'campaign': key 'raters_per_task'"),
        ("simulated", {"temprature": 1.0}, r"section 'simulated': .*temprature"),
        ("eval", {"max_tokens": 5}, r"section 'eval': unknown key\(s\) max_tokens"),
    ],
)
def test_a_bad_key_in_a_section_names_the_file_and_the_section(tmp_path, section, values, message):
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "run"), section: values}))
    with pytest.raises(ConfigError, match=rf"{path}: {message}"):
        check_sections(loop_run(path))


def test_an_unknown_top_level_key_and_bad_values_are_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("rouns: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'rouns' \(did you mean 'rounds'\?\)"):
        loop_run(path)
    path.write_text("compare_with: [best]\n")
    with pytest.raises(ConfigError, match="compare_with: unknown best"):
        loop_run(path)


@pytest.mark.parametrize(
    ("algorithm", "online", "refused"),
    [
        ("ppo", {"kl_coef": 0.1, "num_ppo_epochs": 2}, {"num_generations": 4}),
        ("rloo", {"num_generations": 4, "beta": 0.1}, {"num_ppo_epochs": 2}),
    ],
)
def test_the_online_section_takes_the_keys_of_the_loops_algorithm(tmp_path, algorithm, online, refused):
    path = tmp_path / "loop.yaml"
    path.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "run"), "algorithm": algorithm, "online": online}))
    check_sections(loop_run(path))
    (key,) = refused
    path.write_text(
        yaml.safe_dump({"output_dir": str(tmp_path / "run"), "algorithm": algorithm, "online": {**online, **refused}})
    )
    with pytest.raises(ConfigError, match=rf"{path}: section 'online': unknown key '{key}'"):
        check_sections(loop_run(path))
