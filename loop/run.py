"""`plumb loop run`: the whole RLHF loop, round after round, resumable, with a report at the end.

A round: candidates from the current policy → judgments (simulated raters or people) →
agreement report and pairwise export → reward model (and its gate) → DPO or online RL →
evaluation against the SFT policy under a judge not used in training. The next round
starts from the new policy. Every stage writes into RUN/round-N/STAGE/ and is recorded in
RUN/manifest.json once its outputs are complete; a rerun skips what is done and reruns
a stage that was cut off.

    plumb loop run --config configs/loop/demo.yaml
    plumb loop run --config configs/loop/demo.yaml --rounds 3     # one more round on the same run
"""

import logging
import os
import sys
import time

from loop import evaluation, stages, training
from loop.config import LoopArguments, config_types
from loop.context import LoopRun, relative, stage_config
from loop.manifest import STAGES, is_done, mark_done, mark_started, read_manifest, stage_key, write_manifest
from plumb.config import parse_config, save_resolved_config

logger = logging.getLogger(__name__)

STAGE_FUNCTIONS = {
    "candidates": stages.candidates,
    "judgments": stages.judgments,
    "export": stages.export,
    "reward": training.reward,
    "align": training.align,
    "eval": evaluation.evaluate,
}
EXIT_STOPPED = 1


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, then run the loop; exit status 1 when a gate stopped it."""
    config_path = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"), "command line")
    (args,) = parse_config(config_types(), argv, prog=prog)
    return main(args, config_path=config_path)


def main(args: LoopArguments, *, config_path: str = "config") -> int:
    """Run (or resume) every round the config asks for, then write the report; returns the exit status."""
    from loop.report import write_report

    run = LoopRun(args=args, config_path=config_path, manifest=read_manifest(args.output_dir))
    run.run_dir.mkdir(parents=True, exist_ok=True)
    save_resolved_config(run.run_dir, args)
    # One W&B group and one TensorBoard root (the run directory) for every stage of the run.
    os.environ.setdefault("PLUMB_RUN", f"loop-{run.run_dir.resolve().name}")
    check_sections(run)  # a bad key in any section is found now, not after a round of work
    from collect import init

    init.main(run.db)  # create the store, or bring an older one to the current schema
    status = 0
    try:
        for round_number in range(1, args.rounds + 1):
            run_round(run, round_number)
        run.manifest["stopped"] = None
    except training.GateStop as stop:
        run.manifest["stopped"] = str(stop)
        print(f"plumb loop: stopped: {stop}", file=sys.stderr)
        status = EXIT_STOPPED
    finally:
        write_manifest(run.run_dir, run.manifest)
        if any(is_done(run.manifest, stage_key(1, stage)) for stage in STAGES):
            report = write_report(run.run_dir)
            print(f"Report: {relative(report)}")
    return status


def run_round(run: LoopRun, round_number: int) -> None:
    """Run the stages of one round that are not done yet, in order; check the reward gate after the reward stage."""
    for stage in STAGES:
        key = stage_key(round_number, stage)
        if not is_done(run.manifest, key) or stage in run.args.redo:
            entry = run.manifest["stages"].get(key)
            if entry and entry["state"] == "done":
                logger.info("%s is done, and run again as `redo` asks", key)
            elif entry:  # started before and never finished: the process was killed or failed
                logger.info("%s was cut off (attempt %d): running it again from its start", key, entry["attempts"])
            logger.info("Round %d/%d: %s", round_number, run.args.rounds, stage)
            mark_started(run.run_dir, run.manifest, key)
            started = time.monotonic()
            result = STAGE_FUNCTIONS[stage](run, round_number)
            mark_done(run.run_dir, run.manifest, key, result)
            logger.info("Round %d: %s done in %.0f s", round_number, stage, time.monotonic() - started)
        if stage == "reward":
            training.check_gate(run, round_number)


def check_sections(run: LoopRun) -> None:
    """Parse every section of the config as its stage will, with placeholder paths; a bad key is a ConfigError now."""
    import tempfile
    from pathlib import Path

    from collect.domain.campaign import campaign_from_dict
    from collect.domain.simulated_raters import SimulatedRaterParams
    from plumb.config import ConfigError

    where = run.config_path
    campaign_from_dict({**run.args.campaign, "name": "check"}, where=f"{where}: section 'campaign'")
    try:
        SimulatedRaterParams(**run.args.simulated)
    except TypeError as error:
        raise ConfigError(f"{where}: section 'simulated': {error}") from None
    evaluation.eval_settings(run)
    with tempfile.TemporaryDirectory() as scratch:
        placeholders = {"dataset_name": scratch, "output_dir": scratch}
        for section, values, types in training.sections(run):
            stage_config(
                types,
                {**values, **placeholders},
                Path(scratch) / f"{section}.yaml",
                where=f"{where}: section '{section}'",
            )
