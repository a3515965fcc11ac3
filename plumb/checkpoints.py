"""Resuming killed training runs: only from complete checkpoints, with figures that cover the whole run.

transformers writes a checkpoint folder file by file (model, optimizer, scheduler, RNG,
then trainer_state.json last), so a kill mid-write leaves `checkpoint-N/` with only some
of them, often just config.json, and Trainer's own `resume_from_checkpoint=True` picks it
and fails. Here `resume_from_checkpoint: true` takes the newest checkpoint that is complete
(its trainer_state.json reads and its weights are there) and says which newer ones it skipped.
A resumed Trainer reports loss and runtime for its own session only; `run_training` adds the
part before the checkpoint back, from the checkpoint's log and the time saved with it.
"""

import json
import logging
import re
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from plumb.cards import write_card
from plumb.config import ConfigError
from plumb.model_files import missing_model_files

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "trainer_state.json"


def resume_argument(value: str | bool | None) -> str | bool | None:
    """A config's `resume_from_checkpoint` as Trainer takes it: True for the last checkpoint, a path, or None."""
    if value is None or value is False:
        return None
    if value is True:
        return True
    if value.lower() in ("", "false", "no", "none"):
        return None
    return True if value.lower() in ("true", "yes", "last") else value


def checkpoint_dirs(output_dir) -> list[Path]:
    """The `checkpoint-N` folders of an output directory, oldest (lowest N) first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [path for path in output_dir.iterdir() if path.is_dir() and CHECKPOINT_NAME.match(path.name)]
    return sorted(found, key=checkpoint_step)


def checkpoint_step(checkpoint: Path) -> int:
    """N of a `checkpoint-N` folder."""
    return int(CHECKPOINT_NAME.match(Path(checkpoint).name).group(1))


def missing_parts(checkpoint) -> list[str]:
    """What a checkpoint lacks to be resumed from (empty when complete): its weights, a readable trainer_state.json."""
    checkpoint = Path(checkpoint)
    missing = [part for part in missing_model_files(checkpoint) if part != "config.json"]
    # trainer_state.json is the last file Trainer writes into a checkpoint: a kill before or during it leaves none,
    # or a truncated one.
    try:
        json.loads((checkpoint / STATE_FILE).read_text())
    except (OSError, ValueError):
        missing.append(STATE_FILE)
    return missing


def latest_complete_checkpoint(output_dir) -> tuple[Path | None, list[tuple[Path, list[str]]]]:
    """(the newest complete checkpoint or None, the newer incomplete ones with what each lacks, newest first)."""
    skipped = []
    for checkpoint in reversed(checkpoint_dirs(output_dir)):
        missing = missing_parts(checkpoint)
        if not missing:
            return checkpoint, skipped
        skipped.append((checkpoint, missing))
    return None, skipped


def describe_skipped(skipped: list[tuple[Path, list[str]]]) -> str:
    """'checkpoint-4 (no trainer_state.json, model weights)'-style list of incomplete checkpoints."""
    return ", ".join(f"{path.name} (no {', no '.join(missing)})" for path, missing in skipped)


def resume_checkpoint(value, output_dir) -> str | None:
    """What to pass to `Trainer.train(resume_from_checkpoint=...)` for a config's value: None, or a complete checkpoint.

    `true` takes the newest complete checkpoint in `output_dir` and logs the incomplete ones it skipped; a path
    must be a complete checkpoint. Either way a checkpoint that cannot be resumed from is a ConfigError saying why.
    """
    value = resume_argument(value)
    if value is None:
        return None
    if value is not True:
        missing = missing_parts(value) if Path(value).is_dir() else ["folder"]
        if missing:
            latest, _ = latest_complete_checkpoint(Path(value).parent)
            hint = f"; the newest complete one there is {latest}" if latest else ""
            raise ConfigError(
                f"resume_from_checkpoint: {value} is not a complete checkpoint (no {', no '.join(missing)}): "
                f"the run was probably killed while writing it{hint}. Name another, or use `true` for the newest "
                "complete one."
            )
        return str(value)
    checkpoint, skipped = latest_complete_checkpoint(output_dir)
    if skipped:
        logger.warning(
            "Skipped incomplete checkpoints (a kill while writing them leaves these): %s", describe_skipped(skipped)
        )
    if checkpoint is None:
        raise ConfigError(
            f"resume_from_checkpoint: true, but {output_dir} holds no complete checkpoint to resume from"
            + (f" (incomplete: {describe_skipped(skipped)})" if skipped else "")
            + ". Leave resume_from_checkpoint out to start afresh."
        )
    logger.info("Resuming from %s (step %d)", checkpoint, checkpoint_step(checkpoint))
    return str(checkpoint)


class RunClock(TrainerCallback, ExportableState):
    """Saves the run's training time so far into every checkpoint (trainer_state.json), so a resume can add it back."""

    def __init__(self, before_s: float = 0.0):
        self.before_s = before_s
        self.started: float | None = None
        self.start_step = 0

    def elapsed_s(self) -> float:
        """Training time of the whole run up to now: the sessions before this one, then this one."""
        return self.before_s + (time.monotonic() - self.started if self.started is not None else 0.0)

    def state(self) -> dict:
        """What Trainer writes into the checkpoint's trainer_state.json for this callback."""
        return {"args": {}, "attributes": {"before_s": self.elapsed_s()}}

    def on_train_begin(self, args, state, control, **kwargs):
        """Take the time saved with the checkpoint being resumed (none on a fresh run), then start counting."""
        name = type(self).__name__
        saved = state.stateful_callbacks.get(name)
        saved = saved[0] if isinstance(saved, list) else saved
        self.start_step = state.global_step
        self.before_s = (saved or {}).get("attributes", {}).get("before_s", 0.0) if state.global_step else 0.0
        # Trainer updates stateful_callbacks[name] in place when it saves; a checkpoint written without this
        # callback has no such key, and Trainer would fail on it.
        state.stateful_callbacks.setdefault(name, self.state())
        self.started = time.monotonic()
        return control


def whole_run_loss(log_history: list[dict], start_step: int, end_step: int, session_loss: float) -> float:
    """Mean training loss per step over the whole run: the steps logged up to `start_step`, then this session's.

    Each logged `loss` is the mean over the steps since the previous log; steps after the last log before the
    checkpoint were never logged, and count in neither the sum nor the number of steps.
    """
    total, steps, previous = 0.0, 0, 0
    for entry in sorted((e for e in log_history if "loss" in e and e["step"] <= start_step), key=lambda e: e["step"]):
        span = entry["step"] - previous
        total, steps, previous = total + entry["loss"] * span, steps + span, entry["step"]
    session_steps = end_step - start_step
    if steps == 0:  # a fresh run, or nothing logged before the checkpoint: Trainer's own figure
        return session_loss
    return (total + session_loss * session_steps) / (steps + session_steps)


def write_unfinished_card(output_dir, stage: str) -> None:
    """README.md for an output directory whose training has not finished: no model here yet, how to resume."""
    write_card(
        output_dir,
        title=f"Unfinished Plumb {stage} run",
        summary=f"Training into this folder started but has not finished (it is running, or was killed). It holds "
        f"checkpoints (`checkpoint-N/`), not a trained model. Resume with `--resume_from_checkpoint true` and the "
        f"same `--output_dir {output_dir}`; the finished run replaces this card with the model's own.",
        metadata={"tags": ["plumb", stage, "unfinished"]},
        sections={},
    )


def unfinished_card_writer(trainer, stage: str):
    """A stand-in for TRL's `create_model_card` that writes the unfinished-run card, on the main process only."""

    def create_model_card(*args, **kwargs) -> None:
        if trainer.is_world_process_zero():
            write_unfinished_card(trainer.args.output_dir, stage)

    return create_model_card


def run_training(trainer, resume_from_checkpoint, *, stage: str) -> dict:
    """`trainer.train()`, resumed from the newest complete checkpoint when asked; returns metrics of the whole run.

    They are train_loss, train_runtime_s and, after a resume, resumed_from_step.
    """
    checkpoint = resume_checkpoint(resume_from_checkpoint, trainer.args.output_dir)
    trainer.add_callback(RunClock())
    # TRL writes its own card into output_dir at each checkpoint ("fine-tuned version of None" for a local model),
    # which a killed run leaves as the folder's only description; say instead what the folder holds.
    trainer.create_model_card = unfinished_card_writer(trainer, stage)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    # restore_callback_states_from_checkpoint swaps callbacks for new instances: read the one the run used.
    clock = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, RunClock))
    metrics = {
        "train_loss": whole_run_loss(
            trainer.state.log_history, clock.start_step, trainer.state.global_step, result.training_loss
        ),
        "train_runtime_s": clock.before_s + result.metrics["train_runtime"],
    }
    if clock.start_step:
        metrics["resumed_from_step"] = clock.start_step
        logger.info(
            "Resumed at step %d: train_loss %.4g and train_runtime_s %.1f cover the whole run",
            clock.start_step,
            metrics["train_loss"],
            metrics["train_runtime_s"],
        )
    return metrics
