"""`plumb reward push`: the generated card, a folder that loads, and the Hub calls (faked: no network in tests)."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from transformers import AutoModelForSequenceClassification

from plumb.cli import main as plumb_main
from plumb.config import ConfigError
from reward.config import PushArguments
from reward.push import dataset_reference, main


@pytest.fixture
def model_copy(trained_reward_dir, tmp_path):
    return shutil.copytree(trained_reward_dir, tmp_path / "model")


def test_dry_run_writes_the_card_and_the_folder_loads(model_copy):
    assert plumb_main(["reward", "push", "me/plumb-reward", "--model_dir", str(model_copy), "--dry_run"]) == 0
    card = (model_copy / "README.md").read_text()
    assert card.startswith("---\n") and "reward-model" in card
    assert "## Evaluation" in card and "| accuracy |" in card and "length_baseline_accuracy" in card
    assert "`builtin:prefs`, the small preference set shipped with Plumb" in card
    assert "learning_rate: 0.01" in card and "plumb_config.yaml" in card
    # the card shows the evaluation report's own figures
    report = json.loads((model_copy / "eval_report.json").read_text())
    for key in ("accuracy", "length_baseline_accuracy", "ece", "reward_length_spearman", "mean_margin"):
        assert f"| {key} | {report[key]:.4g} |" in card, key
    assert "| pairs | 57 |" in card
    low, high = report["accuracy_ci95"]
    assert f"Accuracy 95% bootstrap interval: {low:.3f} to {high:.3f}." in card
    assert "Accuracy by group" in card
    for group, row in report["by_group"].items():
        assert f"| {group} | {row['pairs']} | {row['accuracy']:.3f} |" in card, group
    repo = "me/plumb-reward"  # the usage snippet in the card names the pushed repo (nothing is downloaded)
    assert f'from_pretrained("{repo}")' in card
    model = AutoModelForSequenceClassification.from_pretrained(model_copy)
    assert model.config.num_labels == 1


def test_push_uploads_the_gathered_folder(model_copy, monkeypatch):
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **kwargs):
            folder = Path(kwargs["folder_path"])
            calls.append(("upload_folder", kwargs["repo_id"], sorted(path.name for path in folder.iterdir())))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    url = main(PushArguments(repo_id="me/rm", model_dir=str(model_copy), private=True))
    assert url == "https://huggingface.co/me/rm"
    assert calls[0] == ("create_repo", "me/rm", {"private": True, "exist_ok": True})
    uploaded = calls[1][2]
    assert {"README.md", "config.json", "model.safetensors", "plumb_config.yaml", "eval_report.json"} <= set(uploaded)
    assert "training_args.bin" not in uploaded
    assert (model_copy / "README.md").is_file()


def test_dry_run_card_carries_base_model_datasets_and_every_held_out_figure(model_copy):
    from huggingface_hub import ModelCard

    from reward.score import load_reward_model

    # as a run from the default backbone records it (the tiny test backbone has no Hub id)
    config = yaml.safe_load((model_copy / "plumb_config.yaml").read_text())
    (model_copy / "plumb_config.yaml").write_text(yaml.safe_dump({**config, "model_name_or_path": "default"}))
    argv = ["reward", "push", "me/plumb-reward", "--model_dir", str(model_copy), "--dry_run", "--datasets", "me/prefs"]
    assert plumb_main(argv) == 0
    upload = model_copy.with_name("model.hub")

    card = ModelCard.load(upload / "README.md")
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2" and card.data.license == "apache-2.0"
    assert card.data.datasets == ["me/prefs"] and card.data.language == ["en"]
    assert card.data.pipeline_tag == "text-classification" and "reward-model" in card.data.tags
    metrics = json.loads((model_copy / "metrics.json").read_text())
    held_out = {k: v for k, v in metrics.items() if k.startswith("eval_") and isinstance(v, (int, float))}
    assert "eval_accuracy" in held_out and "eval_ece" in held_out
    assert {r.metric_name: r.metric_value for r in card.data.eval_results} == held_out
    assert {(r.dataset_type, r.dataset_split, r.task_type) for r in card.data.eval_results} == {
        ("me/prefs", "test", "text-classification")
    }
    assert "| accuracy |" in card.text and 'from_pretrained("me/plumb-reward")' in card.text

    # what goes up loads as a reward model and names no local path
    load_reward_model(str(upload))
    assert not (upload / "training_args.bin").exists()
    for path in upload.iterdir():
        if path.suffix != ".safetensors":
            assert str(model_copy.parent) not in path.read_text(errors="replace"), path.name
    assert json.loads((upload / "eval_report.json").read_text())["model"] == "model"


def test_push_needs_a_repo_and_a_trained_folder(tmp_path):
    with pytest.raises(ConfigError, match="name the Hub repository"):
        main(PushArguments(model_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match="no trained model here"):
        main(PushArguments(repo_id="me/rm", model_dir=str(tmp_path)))


def test_dataset_reference_links_hub_datasets_to_their_card():
    assert (
        dataset_reference("org/prefs")
        == "[org/prefs](https://huggingface.co/datasets/org/prefs) (see its dataset card)"
    )
    assert "local dataset" in dataset_reference("./data/prefs.jsonl")
