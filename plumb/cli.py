"""The `plumb` command: the one place that knows every stage, by name.

Each stage's `cli.py` is imported only when one of its verbs runs, so `plumb --help`
answers at once without importing torch or Gradio.
"""

import argparse
import importlib
import logging
import os
import sys

from plumb import __version__

STAGES = {
    "collect": ("collect.cli", "people in the loop: campaigns, candidates, rating tasks, quality, leaderboard, export"),
    "sft": ("sft.cli", "supervised fine-tuning of a policy (TRL SFTTrainer)"),
    "reward": ("reward.cli", "reward models: train, evaluate, score, push (TRL RewardTrainer)"),
    "align": (
        "align.cli",
        "align a policy: DPO, PPO-style online RL (RLOO/GRPO), best-of-n, evaluation against the reference",
    ),
    "loop": ("loop.cli", "the whole loop, round after round: candidates, raters, reward, align, eval, report"),
}
COMMANDS = {
    "doctor": (
        "plumb.doctor",
        "check Python, torch and its device, the offline models, tracking and the data directory",
    ),
    "push": (
        "plumb.push",
        "push a reward model, a policy or a dataset export to the Hub with its card (--dry_run: gather only)",
    ),
}
EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    """Run `plumb COMMAND ...`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    table = {**STAGES, **COMMANDS}
    if not argv or argv[0] not in table:
        return _top_level(argv, table)
    if argv[0] in STAGES and len(argv) > 1 and not check_flags_early(f"plumb {argv[0]} {argv[1]}", argv[2:]):
        return EXIT_USAGE
    configure_logging()
    # Trainers phone home when they start unless told not to; Plumb runs offline by default.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    module = importlib.import_module(table[argv[0]][0])
    return run_guarded(module.main, argv[1:], prog=f"plumb {argv[0]}")


class _CurrentStderr(logging.StreamHandler):
    """A handler writing to whatever `sys.stderr` is when a message comes, not the one it was made with.

    `main` may run many times in one process (tests, notebooks) while stderr is redirected and closed in between.
    """

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass  # StreamHandler.__init__ assigns one; the property always answers with the current stderr


def configure_logging() -> None:
    """Show Plumb's own progress messages (INFO) on stderr, leaving other libraries at their defaults."""
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("[plumb] %(message)s"))
    for package in ("plumb", *{module.split(".")[0] for module, _ in STAGES.values()}):
        logger = logging.getLogger(package)
        logger.setLevel(logging.INFO)
        if not logger.handlers:
            logger.addHandler(handler)


def _top_level(argv, table) -> int:
    parser = argparse.ArgumentParser(
        prog="plumb",
        description="Plumb: collect human preferences, train reward models, align policies with TRL.",
        epilog="Run `plumb COMMAND --help` for the verbs of a stage.",
    )
    parser.add_argument("--version", action="version", version=f"plumb {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in table.items():
        commands.add_parser(name, help=help_text)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
    return 0 if not argv else EXIT_USAGE


def run_verbs(verbs: dict, argv: list[str], *, prog: str, description: str) -> int:
    """Dispatch `prog VERB ...` to the verb's module `cli(argv, prog=...)`, importing only that module."""
    if argv and argv[0] in verbs:
        module = importlib.import_module(verbs[argv[0]][0])
        return run_guarded(module.cli, argv[1:], prog=f"{prog} {argv[0]}")
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name, (_, help_text) in verbs.items():
        sub.add_parser(name, help=help_text)
    args = parser.parse_args(argv)
    parser.print_help()
    return 0 if args.verb is None and not argv else EXIT_USAGE


def check_flags_early(prog: str, argv: list[str]) -> bool:
    """False, after one line on stderr, when a flag is unknown to the verb's last recorded parse (no stage import)."""
    from plumb.config import ConfigError, check_flags

    try:
        check_flags(prog, argv)
    except ConfigError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return False
    return True


def run_guarded(function, argv, *, prog: str) -> int:
    """Run a command; turn Plumb's input errors into one clear line on stderr and exit status 2."""
    from plumb.config import ConfigError
    from plumb.data import DataError
    from plumb.models import ModelLoadError

    try:
        return function(argv, prog=prog) or 0
    except (ConfigError, DataError, ModelLoadError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
