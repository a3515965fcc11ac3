"""Tracking mode: online with credentials, offline without, and one run name per loop."""

from types import SimpleNamespace

from plumb.tracking import loop_name, setup_tracking, wandb_mode


def test_mode_follows_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"


def test_stages_of_one_loop_share_the_run_group(monkeypatch, tmp_path):
    monkeypatch.setenv("PLUMB_RUN", "loop-7")
    monkeypatch.setenv("WANDB_MODE", "offline")
    sft = SimpleNamespace(run_name=None, output_dir=str(tmp_path / "sft"), report_to=["wandb"])
    setup_tracking(sft, stage="sft")
    assert sft.run_name == "loop-7-sft" and loop_name() == "loop-7"
    import os

    assert os.environ["WANDB_RUN_GROUP"] == "loop-7"
    assert os.environ["WANDB_DIR"] == str((tmp_path / "sft").resolve())
    reward = SimpleNamespace(run_name=None, output_dir=str(tmp_path / "rm"), report_to=["tensorboard"])
    assert setup_tracking(reward, stage="reward") == "disabled" and reward.run_name == "loop-7-reward"
