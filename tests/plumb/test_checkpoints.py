"""Killed training runs: a resume takes the newest complete checkpoint, the figures cover the whole run, and a killed
output folder is refused by name.

Kills are simulated in process where a real one lands: while Trainer writes a checkpoint (its config.json written,
its weights not yet) or between two steps. What is left on disk is what a SIGKILL at that moment leaves.
"""

import json
import logging
import shutil
import time
from pathlib import Path

import pytest

from plumb.checkpoints import resume_argument, resume_checkpoint, whole_run_loss
from plumb.cli import main as plumb_main
from plumb.config import ConfigError, parse_config
from plumb.models import ModelLoadError, load_policy
from reward.score import load_reward_model
from tests.support.reward import reward_train_args

# A 4-step reward run with checkpoints at steps 2 and 4, every step's loss logged.
REWARD_FLAGS = ("--max_steps", "4", "--save_strategy", "steps", "--save_steps", "2")


class Killed(BaseException):
    """Stands for SIGKILL: no `except Exception` in a stage or in transformers stops it."""


def run_killed(stage_main, args, *, writing_checkpoint: int | None = None, after_step: int | None = None) -> float:
    """Run a stage until the simulated kill; returns the seconds the killed call took."""
    import transformers.modeling_utils
    from transformers.trainer_callback import CallbackHandler

    save_file, on_step_end = transformers.modeling_utils.safe_save_file, CallbackHandler.on_step_end

    def save_weights(tensors, filename, *rest, **kwargs):
        if Path(filename).parent.name == f"checkpoint-{writing_checkpoint}":
            raise Killed  # the model's config.json is on disk, its weights are not
        return save_file(tensors, filename, *rest, **kwargs)

    def step_end(handler, args, state, control):
        if state.global_step == after_step:
            raise Killed  # this step ran, but it was neither logged nor saved
        return on_step_end(handler, args, state, control)

    started = time.monotonic()
    with pytest.MonkeyPatch.context() as patch, pytest.raises(Killed):
        patch.setattr(transformers.modeling_utils, "safe_save_file", save_weights)
        patch.setattr(CallbackHandler, "on_step_end", step_end)
        stage_main(*args)
    return time.monotonic() - started


def logged_losses(checkpoint: Path) -> dict[int, float]:
    """Step -> training loss, from a checkpoint's trainer_state.json."""
    history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    return {entry["step"]: entry["loss"] for entry in history if "loss" in entry}


def saved_clock(checkpoint: Path) -> float:
    """The training time so far that Plumb saved with a checkpoint."""
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return state["stateful_callbacks"]["RunClock"]["attributes"]["before_s"]


@pytest.fixture(scope="module")
def killed_reward_run(tmp_path_factory, tiny_reward_dir):
    """The output folder of a reward run killed while writing checkpoint-4 (checkpoint-2 is complete)."""
    from reward.train import main

    out = tmp_path_factory.mktemp("killed") / "out"
    run_killed(main, reward_train_args(out, tiny_reward_dir, *REWARD_FLAGS), writing_checkpoint=4)
    return out


@pytest.fixture
def killed_copy(killed_reward_run, tmp_path):
    """A copy of the killed run's folder, for a test that resumes it."""
    return Path(shutil.copytree(killed_reward_run, tmp_path / "out"))


def test_a_kill_mid_write_leaves_a_checkpoint_with_only_config_json(killed_reward_run):
    # what the resume below must cope with: the simulated kill leaves what a real one does
    assert sorted(p.name for p in (killed_reward_run / "checkpoint-4").iterdir()) == ["config.json"]
    assert (killed_reward_run / "checkpoint-2" / "trainer_state.json").is_file()


def test_resume_true_skips_the_checkpoint_killed_mid_write_and_says_so(killed_copy, tiny_reward_dir, caplog):
    from reward.train import main

    with caplog.at_level(logging.INFO, logger="plumb"):
        metrics = main(
            *reward_train_args(killed_copy, tiny_reward_dir, *REWARD_FLAGS, "--resume_from_checkpoint", "true")
        )

    assert f"Resuming from {killed_copy / 'checkpoint-2'} (step 2)" in caplog.text
    skipped = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("Skipped incomplete"))
    assert "checkpoint-4 (no model weights (model.safetensors or pytorch_model.bin), no trainer_state.json)" in skipped
    assert metrics["resumed_from_step"] == 2
    # it trained on to step 4 and rewrote checkpoint-4 whole; the folder holds the model
    losses = logged_losses(killed_copy / "checkpoint-4")
    assert sorted(losses) == [1, 2, 3, 4]
    assert metrics["train_loss"] == pytest.approx(sum(losses.values()) / 4, rel=1e-6)
    load_reward_model(str(killed_copy))


def test_resumed_run_reports_the_loss_and_runtime_of_the_whole_run(tmp_path, tiny_reward_dir):
    from reward.train import main

    uninterrupted = main(*reward_train_args(tmp_path / "whole", tiny_reward_dir, *REWARD_FLAGS))
    out = tmp_path / "out"
    killed_s = run_killed(main, reward_train_args(out, tiny_reward_dir, *REWARD_FLAGS), after_step=3)
    started = time.monotonic()
    metrics = main(*reward_train_args(out, tiny_reward_dir, *REWARD_FLAGS, "--resume_from_checkpoint", "true"))
    resumed_s = time.monotonic() - started

    # Each step's loss, as logged: steps 1-2 before the kill (kept in checkpoint-2), 3-4 after the resume
    losses = logged_losses(out / "checkpoint-4")
    assert sorted(losses) == [1, 2, 3, 4] and logged_losses(out / "checkpoint-2") == {1: losses[1], 2: losses[2]}
    whole = sum(losses.values()) / 4
    assert abs(whole - (losses[3] + losses[4]) / 2) > 1e-4  # the resumed half alone would be told apart
    assert metrics["train_loss"] == pytest.approx(whole, rel=1e-6)
    # resuming replays the same batches and random state: the figure an uninterrupted run reports
    assert metrics["train_loss"] == pytest.approx(uninterrupted["train_loss"], rel=1e-5)
    assert json.loads((out / "metrics.json").read_text())["train_loss"] == metrics["train_loss"]

    # runtime: the killed session's training up to checkpoint-2, then all of the resumed session's
    before, at_step_4 = saved_clock(out / "checkpoint-2"), saved_clock(out / "checkpoint-4")
    assert 0 < before < killed_s and before < at_step_4 <= metrics["train_runtime_s"]
    assert metrics["train_runtime_s"] - before < resumed_s


@pytest.mark.parametrize("stage", ["sft", "dpo", "ppo"])
def test_every_stage_resumes_past_a_killed_checkpoint_and_reports_the_whole_run(
    stage, tmp_path, tiny_policy_dir, tiny_reward_dir
):
    module, argv = stage_run(stage, tmp_path, tiny_policy_dir, tiny_reward_dir)
    run_killed(module.main, parse_stage(module, argv), writing_checkpoint=2)
    resumed = [*argv, "--resume_from_checkpoint", "true"]  # the string a config or the command line gives
    metrics = module.main(*parse_stage(module, resumed))

    out = tmp_path / "out"
    losses = logged_losses(out / "checkpoint-2")
    assert metrics["resumed_from_step"] == 1 and sorted(losses) == [1, 2]
    assert metrics["train_loss"] == pytest.approx((losses[1] + losses[2]) / 2, rel=1e-6)
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert f"| train_loss | {metrics['train_loss']:.4g} |" in (out / "README.md").read_text()


def stage_run(stage: str, folder: Path, policy: str, reward: str):
    """(the stage module, argv) of a 2-step run on tiny models and 8 rows: a checkpoint and a logged loss each step."""
    argv = ["--output_dir", str(folder / "out"), "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1"]
    argv += ["--logging_steps", "1", "--report_to", "none", "--learning_rate", "1e-2", "--seed", "0"]
    argv += ["--model_name_or_path", policy, "--per_device_train_batch_size", "4" if stage == "ppo" else "2"]
    if stage == "ppo":
        from align import ppo

        flags = ["--reward_model", reward, "--max_prompts", "8"]
        return ppo, [*argv, *flags, "--max_completion_length", "8"]
    data = folder / "data.jsonl"
    rows = [
        [{"role": "user", "content": f"Count to {n}."}, {"role": "assistant", "content": " ".join(map(str, range(n)))}]
        for n in range(1, 9)
    ]
    if stage == "sft":
        from sft import train as module

        data.write_text("".join(json.dumps({"messages": row}) + "\n" for row in rows))
    else:
        from align import dpo as module

        pairs = [{"prompt": row[:1], "chosen": row[1:], "rejected": [{**row[1], "content": "No."}]} for row in rows]
        data.write_text("".join(json.dumps(pair) + "\n" for pair in pairs))
    return module, [*argv, "--dataset_name", str(data), "--test_size", "0", "--max_length", "64"]


def parse_stage(module, argv: list[str]) -> tuple:
    """A stage's config dataclasses filled from `argv` (`plumb align ppo` refuses another `--algorithm`)."""
    types = module.config_types(argv) if module.__name__ == "align.ppo" else module.config_types()
    return parse_config(types, argv)


def test_killed_output_folder_carries_plumbs_unfinished_card_not_trls(killed_reward_run):
    card = (killed_reward_run / "README.md").read_text()
    assert "Unfinished Plumb reward run" in card and "--resume_from_checkpoint true" in card
    assert "None" not in card  # TRL's card: "a fine-tuned version of None", pipeline(model="None")


def test_loading_a_killed_output_folder_names_it_and_what_is_missing(killed_reward_run, capsys):
    with pytest.raises(ModelLoadError) as error:
        load_reward_model(str(killed_reward_run))
    message = str(error.value)
    assert message.startswith(f"{killed_reward_run} holds no complete model: no config.json and no model weights")
    assert f"--resume_from_checkpoint true --output_dir {killed_reward_run}" in message
    assert f"newest complete checkpoint, {killed_reward_run / 'checkpoint-2'}" in message

    with pytest.raises(ModelLoadError, match="no model weights .* killed while writing"):
        load_policy(str(killed_reward_run / "checkpoint-4"))

    # the command says it in one line, with no traceback
    status = plumb_main(
        ["reward", "eval", "--model_name_or_path", str(killed_reward_run), "--dataset_name", "builtin:prefs"]
    )
    error_text = capsys.readouterr().err
    assert status == 2 and f"{killed_reward_run} holds no complete model" in error_text
    assert "Traceback" not in error_text


def test_resuming_from_an_incomplete_checkpoint_is_refused_with_the_reason(killed_reward_run, tmp_path):
    with pytest.raises(ConfigError) as error:
        resume_checkpoint(str(killed_reward_run / "checkpoint-4"), killed_reward_run)
    assert "no model weights" in str(error.value) and "no trainer_state.json" in str(error.value)
    assert f"the newest complete one there is {killed_reward_run / 'checkpoint-2'}" in str(error.value)

    only_killed = tmp_path / "out"
    shutil.copytree(killed_reward_run / "checkpoint-4", only_killed / "checkpoint-4")
    with pytest.raises(ConfigError, match="holds no complete checkpoint to resume from .incomplete: checkpoint-4"):
        resume_checkpoint("true", only_killed)
    assert resume_checkpoint("false", killed_reward_run) is None


def test_truncated_trainer_state_makes_a_checkpoint_incomplete(killed_reward_run, tmp_path):
    # a kill while trainer_state.json (the last file) is being written leaves it cut short
    out = tmp_path / "out"
    shutil.copytree(killed_reward_run / "checkpoint-2", out / "checkpoint-2")
    state = out / "checkpoint-2" / "trainer_state.json"
    state.write_text(state.read_text()[:100])
    with pytest.raises(ConfigError, match=r"checkpoint-2 \(no trainer_state.json\)"):
        resume_checkpoint("true", out)


def test_whole_run_loss_weights_each_logged_mean_by_its_steps():
    # logged every 2 steps, checkpoint at step 3 (step 3 never logged), resumed session: steps 4-6 at mean 0.5.
    history = [{"step": 2, "loss": 1.0}, {"step": 2, "eval_loss": 9.0}, {"step": 4, "loss": 7.0}]
    # step 4's entry is the resumed session's own; the steps before: 2 steps at 1.0 -> (2 * 1.0 + 3 * 0.5) / 5
    assert whole_run_loss(history, 3, 6, 0.5) == pytest.approx(0.7)
    assert whole_run_loss(history, 0, 6, 0.5) == 0.5  # a fresh run: Trainer's figure as it is


def test_resume_argument():
    assert resume_argument(None) is None and resume_argument("false") is None and resume_argument(False) is None
    assert resume_argument("last") is True and resume_argument("True") is True
    assert resume_argument("out/checkpoint-2") == "out/checkpoint-2"
