"""`plumb reward push`: the generated card, a folder that loads, and the Hub calls (faked: no network in tests)."""

import json
import shutil

import pytest
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


def test_push_uploads_the_folder(model_copy, monkeypatch):
    calls = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))
            return f"https://huggingface.co/{repo_id}"

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs["repo_id"], kwargs))

    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    url = main(PushArguments(repo_id="me/rm", model_dir=str(model_copy), private=True))
    assert url == "https://huggingface.co/me/rm"
    assert calls[0] == ("create_repo", "me/rm", {"private": True, "exist_ok": True})
    assert calls[1][2]["folder_path"] == str(model_copy)
    assert (model_copy / "README.md").is_file()


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
