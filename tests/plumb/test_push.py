"""`plumb push`: models and data named by their Hub ids, the upload folder a dry run leaves (cards that load with
huggingface_hub's classes, a dataset that loads with `datasets`, no local paths), and the Hub calls (faked)."""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from plumb import models
from plumb.cards import hub_dataset_id, hub_model_id, model_card_data
from plumb.cli import main as plumb_main
from plumb.config import ConfigError
from plumb.push import HubArguments, PushArguments, folder_kind, push

SMOLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def trained_from(folder: Path, origin: str) -> str:
    """A folder whose plumb_config.yaml says it was trained from `origin`, as every Plumb training run leaves it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plumb_config.yaml").write_text(yaml.safe_dump({"model_name_or_path": origin}))
    return str(folder)


def test_models_and_data_are_named_by_their_hub_ids(tmp_path, monkeypatch):
    assert hub_model_id("default", kind="policy") == SMOLLM
    assert hub_model_id("default", kind="reward") == MINILM
    assert hub_model_id(str(models.default_policy_gguf())) == SMOLLM
    assert hub_model_id(str(models.default_reward_dir()), kind="policy") == MINILM  # what the folder is decides
    cached = tmp_path / "cache" / "SmolLM2-dequantized"
    cached.mkdir(parents=True)
    monkeypatch.setattr(models, "gguf_cache_path", lambda gguf: cached)
    assert hub_model_id(str(cached)) == SMOLLM  # the default's safetensors copy, as a LoRA adapter names its base

    # A local start is what it was trained from, through as many runs as it took
    sft = trained_from(tmp_path / "sft", "default")
    dpo = trained_from(tmp_path / "dpo", sft)
    assert hub_model_id(dpo) == SMOLLM and hub_model_id(dpo, kind="reward") == MINILM
    assert (
        hub_model_id(trained_from(tmp_path / "qwen-sft", "Qwen/Qwen2.5-0.5B-Instruct")) == "Qwen/Qwen2.5-0.5B-Instruct"
    )
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": sft}))
    assert hub_model_id(str(adapter)) == SMOLLM
    trained_from(tmp_path / "a", str(tmp_path / "b"))
    trained_from(tmp_path / "b", str(tmp_path / "a"))
    assert hub_model_id(str(tmp_path / "a")) is None  # a loop names nothing
    assert hub_model_id(str(tmp_path / "cache")) is None  # a local folder of unknown origin
    assert hub_model_id("./missing/model") is None

    assert hub_dataset_id("builtin:hh-harmless") == "Anthropic/hh-rlhf"  # shipped, from the Hub
    assert hub_dataset_id("builtin:prefs") is None  # written for Plumb
    assert hub_dataset_id("team/prefs") == "team/prefs"
    assert hub_dataset_id(sft) is None


def test_what_a_folder_holds_decides_how_it_is_pushed(tmp_path):
    def folder(name, file, content):
        (tmp_path / name).mkdir()
        (tmp_path / name / file).write_text(json.dumps(content))
        return tmp_path / name

    assert folder_kind(folder("rm", "config.json", {"architectures": ["BertForSequenceClassification"]})) == "reward"
    assert folder_kind(folder("lm", "config.json", {"architectures": ["LlamaForCausalLM"]})) == "policy"
    assert folder_kind(folder("rm-lora", "adapter_config.json", {"task_type": "SEQ_CLS"})) == "reward"
    assert folder_kind(folder("lm-lora", "adapter_config.json", {"task_type": "CAUSAL_LM"})) == "policy"
    assert folder_kind(folder("export", "summary.json", {})) == "dataset"
    # a folder that records no start of its own claims no base model (not the default's)
    data = model_card_data(tmp_path / "lm", kind="policy", tags=[])
    assert data.base_model is None and data.license is None and data.eval_results is None


# A model folder


@pytest.fixture
def adapter_run(tmp_path, tiny_policy_dir):
    """A LoRA run's output folder as training leaves it: the adapter (its base named by an absolute path), the
    tokenizer, plumb_config.yaml with absolute paths, metrics.json, a card, a checkpoint, logs, the trainer pickle."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from plumb.cards import write_card
    from plumb.models import load_tokenizer

    out = tmp_path / "runs" / "dpo-lora"
    sft = trained_from(tmp_path / "sft", "default")
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_policy_dir), LoraConfig(r=2, target_modules=["q_proj"])
    )
    model.save_pretrained(out)
    load_tokenizer(tiny_policy_dir).save_pretrained(out)
    config = {"model_name_or_path": sft, "dataset_name": str(tmp_path / "pairs.jsonl"), "output_dir": str(out)}
    config["dataset_test_split"] = "test"
    (out / "plumb_config.yaml").write_text(yaml.safe_dump(config))
    metrics = {"train_loss": 0.61, "train_runtime_s": 3.0, "eval_loss": 0.52, "eval_rewards/accuracies": 0.75}
    (out / "metrics.json").write_text(json.dumps(metrics))
    write_card(
        out, title=f"DPO from {sft}", summary=f"On {config['dataset_name']}.", metadata={"tags": ["dpo"]}, sections={}
    )
    (out / "training_args.bin").write_bytes(str(out).encode())
    (out / "checkpoint-1").mkdir()
    (out / "checkpoint-1" / "trainer_state.json").write_text(json.dumps({"best_model_checkpoint": str(out)}))
    (out / "runs").mkdir()
    (out / "runs" / "events.out.tfevents").write_text(str(out))
    return out


def test_a_model_is_gathered_for_the_hub_with_nothing_naming_a_local_path(adapter_run, tmp_path, tiny_policy_dir):
    from huggingface_hub import ModelCard
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    upload = tmp_path / "upload"
    argv = ["push", str(adapter_run), "me/dpo-lora", "--dry_run", "--upload_dir", str(upload), "--language", "en", "fr"]
    assert plumb_main(argv) == 0

    kept = {str(path.relative_to(upload)) for path in upload.rglob("*") if path.is_file()}
    source = {str(path.relative_to(adapter_run)) for path in adapter_run.rglob("*") if path.is_file()}
    assert kept == source - {"training_args.bin", "checkpoint-1/trainer_state.json", "runs/events.out.tfevents"}
    for path in upload.iterdir():
        if path.suffix != ".safetensors":
            assert str(tmp_path) not in path.read_text(errors="replace"), path.name

    card = ModelCard.load(upload / "README.md")
    assert card.data.base_model == SMOLLM and card.data.library_name == "peft" and card.data.license == "apache-2.0"
    assert card.data.language == ["en", "fr"] and card.data.datasets is None  # local data: not a Hub dataset
    assert card.data.tags == ["plumb", "trl", "dpo"] and card.data.model_name == "dpo-lora"
    metrics = json.loads((adapter_run / "metrics.json").read_text())
    assert {r.metric_name: r.metric_value for r in card.data.eval_results} == {
        key: value for key, value in metrics.items() if key.startswith("eval_")
    }
    assert {(r.dataset_type, r.dataset_split) for r in card.data.eval_results} == {("pairs.jsonl", "test")}
    assert "# DPO from sft" in card.text and "On pairs.jsonl." in card.text  # the run's own card, made portable

    assert json.loads((upload / "adapter_config.json").read_text())["base_model_name_or_path"] == SMOLLM
    assert yaml.safe_load((upload / "plumb_config.yaml").read_text()) == {
        "model_name_or_path": "sft",
        "dataset_name": "pairs.jsonl",
        "output_dir": "dpo-lora",
        "dataset_test_split": "test",
    }
    # the adapter itself is untouched: it loads onto its base
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_policy_dir), str(upload))

    # a dry run again replaces its own upload folder; --base_model and --license override what the folder says
    again = push(
        PushArguments(path=str(adapter_run), repo_id="me/dpo-lora", dry_run=True),
        HubArguments(upload_dir=str(upload), base_model="me/sft", license="mit", datasets=["me/prefs"]),
    )
    card = ModelCard.load(Path(again) / "README.md")
    assert (card.data.base_model, card.data.license, card.data.datasets) == ("me/sft", "mit", ["me/prefs"])
    assert {r.dataset_type for r in card.data.eval_results} == {"me/prefs"}


def test_a_file_naming_a_local_path_stops_the_upload(adapter_run, tmp_path, monkeypatch, capsys):
    (adapter_run / "notes.txt").write_text(f"trained on {tmp_path}/secret/data.jsonl\n")
    monkeypatch.setattr("huggingface_hub.HfApi", lambda: pytest.fail("nothing may be uploaded"))
    assert plumb_main(["push", str(adapter_run), "me/dpo-lora"]) == 2
    error = capsys.readouterr().err
    assert "notes.txt: names the local path" in error and "secret/data.jsonl" in error and "nothing was pushed" in error


class FakeApi:
    """Records the Hub calls, and what the folder being uploaded holds at the moment it is uploaded."""

    calls: list = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        held = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
        self.calls.append(("upload_folder", kwargs, held))


def test_a_push_uploads_the_gathered_folder_in_one_commit(adapter_run, monkeypatch):
    FakeApi.calls = []
    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    url = push(PushArguments(path=str(adapter_run), repo_id="me/dpo-lora", private=True), HubArguments())
    assert url == "https://huggingface.co/me/dpo-lora"
    (_, repo, options), (_, upload, held) = FakeApi.calls
    assert (repo, options) == ("me/dpo-lora", {"private": True, "exist_ok": True})
    assert upload["repo_id"] == "me/dpo-lora" and "repo_type" not in upload  # a model repository
    assert "README.md" in held and "adapter_model.safetensors" in held and "training_args.bin" not in held
    assert not Path(upload["folder_path"]).exists()  # a temporary folder, gone after the upload
    assert not Path(f"{adapter_run}.hub").exists()


# A dataset export


@pytest.fixture
def export_dir(tmp_path):
    """A `plumb collect export --format kto` folder: a Parquet file per split, summary.json and its card."""
    import datasets

    from collect.services.export.dataset import write_dataset_card

    rows = [
        {"prompt": [{"role": "user", "content": f"Q{i}"}], "completion": [{"role": "assistant", "content": f"A{i}"}]}
        | {"label": i % 2 == 0, "meta": {"task_id": i // 2, "raters": ["ann", "bo"]}}
        for i in range(10)
    ]
    splits = {"train": rows[:8], "test": rows[8:]}
    out = tmp_path / "exports" / "demo-kto"
    out.mkdir(parents=True)
    for name, split in splits.items():
        datasets.Dataset.from_list(split).to_parquet(str(out / f"{name}-0a1b.parquet"))
    summary = {
        "campaign": "demo",
        "format": "kto",
        "per_rater": False,
        "rows": 10,
        "tasks": 6,
        "judgments": 12,
        "raters": 2,
        "mean_agreement": 0.8,
        "judgments_by_rater_kind": {"human": 12},
        "left_out": {"tie": 1},
        "splits": {name: len(split) for name, split in splits.items()},
        "data_files": {name: f"{name}-0a1b.parquet" for name in splits},
    }
    (out / "summary.json").write_text(json.dumps(summary))
    write_dataset_card(out, summary, "Prefer the kinder answer.")
    return out, splits


def test_an_export_is_pushed_in_the_layout_datasets_writes_and_its_card_kept(export_dir, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    out, splits = export_dir
    local = DatasetCard.load(out / "README.md")
    assert local.data.task_categories == ["text-generation"] and local.data.size_categories == ["n<1K"]
    assert local.data.license == "unknown" and local.data.configs[0]["data_files"][0]["path"] == "train-0a1b.parquet"
    assert {name: split.to_list() for name, split in datasets.load_dataset(str(out)).items()} == splits

    assert plumb_main(["push", str(out), "me/prefs", "--dry_run", "--license", "cc-by-4.0"]) == 0
    upload = out.with_name("demo-kto.hub")
    card = DatasetCard.load(upload / "README.md")
    shards = r"data/(train|test)-00000-of-00001-[0-9a-f]{12}\.parquet"
    held = sorted(str(p.relative_to(upload)) for p in upload.rglob("*") if p.is_file())
    assert held[0] == "README.md" and [re.fullmatch(shards, name).group(1) for name in held[1:]] == ["test", "train"]
    named = {entry["split"]: entry["path"] for entry in card.data.configs[0]["data_files"]}
    assert card.data.configs[0]["config_name"] == "default" and sorted(named.values()) == held[1:]
    assert [re.fullmatch(shards, path).group(1) for split, path in named.items()] == list(named) == ["train", "test"]
    info = card.data.dataset_info
    assert {split["name"]: split["num_examples"] for split in info["splits"]} == {"train": 8, "test": 2}
    assert {feature["name"] for feature in info["features"]} == {"prompt", "completion", "label", "meta"}
    assert (card.data.license, card.data.language, card.data.task_categories) == (
        "cc-by-4.0",
        ["en"],
        ["text-generation"],
    )
    assert card.data.size_categories == ["n<1K"] and card.data.pretty_name == "Plumb campaign demo (kto)"
    assert "- tie: 1" in card.text and "Prefer the kinder answer." in card.text  # the export's own card, kept
    assert str(tmp_path) not in (upload / "README.md").read_text()
    assert {name: split.to_list() for name, split in datasets.load_dataset(str(upload)).items()} == splits

    # a dry run again, of other rows of the same shape and size, reads back as itself, not as the one before
    # (datasets caches a local folder by its file names and card)
    for row in (
        {"prompt": "Hi", "completion": "Hello", "label": True},
        {"prompt": "Yo", "completion": "Hallo", "label": False},
    ):
        (tmp_path / "more.jsonl").write_text(json.dumps(row) + "\n")
        argv = ["push", str(tmp_path / "more.jsonl"), "me/more", "--dry_run", "--upload_dir", str(upload)]
        assert plumb_main(argv) == 0
        assert datasets.load_dataset(str(upload))["train"].to_list() == [row]


def test_a_dataset_push_replaces_the_repositorys_shards(export_dir, monkeypatch):
    FakeApi.calls = []
    monkeypatch.setattr("huggingface_hub.HfApi", FakeApi)
    out, _ = export_dir
    push(PushArguments(path=str(out), repo_id="me/prefs"), HubArguments())
    (_, _, options), (_, upload, held) = FakeApi.calls
    assert options == {"private": False, "exist_ok": True, "repo_type": "dataset"}
    assert upload["repo_type"] == "dataset" and upload["delete_patterns"] == ["data/*"]
    assert held[0] == "README.md" and [name.split("-")[0] for name in held[1:]] == ["data/test", "data/train"]


def test_push_needs_something_to_push_and_a_repo(tmp_path):
    with pytest.raises(ConfigError, match="plumb push PATH REPO"):
        push(PushArguments(path=str(tmp_path)), HubArguments())
    with pytest.raises(ConfigError, match="no such file"):
        push(PushArguments(path=str(tmp_path / "absent"), repo_id="me/x"), HubArguments())
    with pytest.raises(ConfigError, match="not a Hub repository id"):
        push(PushArguments(path=str(tmp_path), repo_id="not a repo!"), HubArguments())
    (tmp_path / "upload").mkdir()
    (tmp_path / "upload" / "mine.txt").write_text("keep me")
    (tmp_path / "data.jsonl").write_text(json.dumps({"prompt": "Hi", "completion": "Hello", "label": True}) + "\n")
    with pytest.raises(ConfigError, match="upload folder is not empty"):
        push(
            PushArguments(path=str(tmp_path / "data.jsonl"), repo_id="me/x"),
            HubArguments(upload_dir=str(tmp_path / "upload")),
        )
    assert (tmp_path / "upload" / "mine.txt").read_text() == "keep me"
    shutil.rmtree(tmp_path / "upload")
