"""What every stage of a run needs to know: the config, the run directory, the store and the round's models.

Stages hand each other directories (datasets, reward models, policies), never Python
objects; the manifest records them, so a resumed run finds a finished round's policy
and reward model where that round left them.
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from loop.config import LoopArguments
from loop.manifest import result_of, stage_key
from plumb.config import ConfigError, parse_config

logger = logging.getLogger(__name__)


@dataclass
class LoopRun:
    """One run of the loop: its arguments, its directory and manifest, and the models loaded so far."""

    args: LoopArguments
    config_path: str
    manifest: dict
    models: object = None  # a plumb.generation.LoadedModels, made on first use
    _gold: Path | None = field(default=None, repr=False)

    @property
    def run_dir(self) -> Path:
        """The run directory."""
        return Path(self.args.output_dir)

    @property
    def db(self) -> str:
        """The store's URL or SQLite file: the config's, else collect.sqlite in the run directory."""
        return self.args.db or str((self.run_dir / "collect.sqlite").resolve())

    def stage_dir(self, round_number: int, stage: str) -> Path:
        """The folder of a stage of a round (created)."""
        path = self.run_dir / stage_key(round_number, stage)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def campaign_name(self, round_number: int) -> str:
        """The store's campaign of a round: named after the run, so several runs can share one database."""
        return f"{self.run_dir.resolve().name}-round-{round_number}"

    def policy_at_start(self, round_number: int) -> str:
        """The policy a round samples from and aligns: the SFT policy, then the previous round's aligned policy."""
        if round_number == 1:
            return self.args.sft_policy
        return self.result(round_number - 1, "align")["policy"]

    def reward_model(self, round_number: int) -> str | None:
        """The reward model a round trained (None before its reward stage finished)."""
        result = self.result(round_number, "reward")
        return result["model"] if result else None

    def result(self, round_number: int, stage: str) -> dict | None:
        """What a finished stage of a round recorded in the manifest."""
        return result_of(self.manifest, round_number, stage)

    def gold_judge(self) -> str:
        """The gold judge's directory: built on first use from human pairs, then cached under PLUMB_HOME."""
        if self._gold is None:
            from loop.gold_judge import gold_judge

            self._gold = gold_judge(
                self.args.gold_backbone, pairs=self.args.gold_pairs, config=self.args.gold_settings or None
            )
        return str(self._gold)

    def judge(self, round_number: int) -> str:
        """The evaluation's judge: the gold judge, the round's own reward model, or the directories named."""
        if self.args.judge == "gold":
            return self.gold_judge()
        if self.args.judge == "round":
            return self.reward_model(round_number)
        return self.args.judge

    def loaded_models(self):
        """The models loaded for generation, shared by the rounds' candidate stages (each spec loaded once)."""
        if self.models is None:
            from plumb.generation import LoadedModels

            self.models = LoadedModels()
        return self.models


def stage_config(config_types: tuple, values: dict, path: Path, *, where: str):
    """Write a stage's config file (the loop's section with the round's paths filled in) and parse it as the stage does.

    The file stays in the stage's folder, so the stage can be rerun by hand with `--config`.
    An error names the loop's config file and the section it came from.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# Written by `plumb loop run` from {where}.\n" + yaml.safe_dump(values, sort_keys=False))
    try:
        return parse_config(config_types, ["--config", str(path)])
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}".replace(f"{path}: ", "")) from None


def relative(path: str | os.PathLike) -> str:
    """A path as shown in messages: relative to the working directory when it is under it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
