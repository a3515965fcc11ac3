"""`plumb align kto` on a tiny model: the held-out KTO figures against log-prob ratios worked out here, pairs split
into desirable and undesirable rows, the shipped recipe through the command line, settings refused before any model
loads, and the trained policy pushed with --dry_run: its card's metadata from the folder's own files."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

import align.kto
from align.kto import config_types, load_unpaired, main
from plumb.cli import main as plumb_main
from plumb.config import ConfigError, parse_config
from plumb.models import load_tokenizer
from tests.support.models import save_tiny_policy
from tests.support.worked import completion_log_prob

TOPICS = ["a colour", "a fruit", "a planet", "a metal", "an ocean", "a river", "a tree", "a bird", "a month", "a dance"]
ANSWERS = ["Blue.", "Apple.", "Mars.", "Iron.", "The Pacific.", "The Nile.", "Oak.", "Robin.", "May.", "Tango."]
REFUSALS = ["No.", "I won't.", "Ask later.", "Hmm", "?"] * 2
BATCH = 4
SEED = 2  # the tiny policy's init: after two steps its held-out KL estimate is 0.47, above the floor
RECIPE = Path(__file__).resolve().parents[2] / "configs" / "align" / "kto-demo.yaml"


def msgs(role, text):
    return [{"role": role, "content": text}]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture(scope="module")
def unpaired_dir(tmp_path_factory):
    """A `kto` export's shape: each task's best answer desirable, its worst undesirable, with `meta`; its own test
    split (the last three tasks), so the held-out rows are known here."""
    folder = tmp_path_factory.mktemp("kto")
    rows = [
        {
            "prompt": msgs("user", f"Name {topic}."),
            "completion": msgs("assistant", answer),
            "label": label,
            "meta": {"task_id": task},
        }
        for task, (topic, good, bad) in enumerate(zip(TOPICS, ANSWERS, REFUSALS))
        for answer, label in ((good, True), (bad, False))
    ]
    write_jsonl(folder / "train.jsonl", rows[:14])
    write_jsonl(folder / "test.jsonl", rows[14:])
    return folder


@pytest.fixture(scope="module")
def sft_dir(tmp_path_factory, tiny_policy_dir):
    """A tiny policy as an SFT run of the offline default leaves it (its plumb_config.yaml names `default`), seeded:
    with it two training steps move the held-out KL estimate above KTO's floor of 0, so the test checks it."""
    folder = tmp_path_factory.mktemp("sft") / "sft-demo"
    save_tiny_policy(folder, load_tokenizer(tiny_policy_dir), seed=SEED)
    (folder / "plumb_config.yaml").write_text(yaml.safe_dump({"model_name_or_path": "default"}))
    return str(folder)


def kto_args(out_dir, model_dir, data, *flags):
    return parse_config(
        config_types(),
        [
            "--model_name_or_path",
            model_dir,
            "--output_dir",
            str(out_dir),
            "--max_steps",
            "2",
            "--dataset_name",
            data,
            "--per_device_train_batch_size",
            str(BATCH),
            "--per_device_eval_batch_size",
            "16",
            "--max_length",
            "256",
            "--learning_rate",
            "1e-2",
            "--report_to",
            "none",
            "--save_strategy",
            "no",
            "--logging_steps",
            "1",
            "--seed",
            "0",
            *flags,
        ],
    )


def expected_eval(policy, reference, tokenizer, rows, beta: float) -> dict:
    """KTO's held-out figures by hand, the rows in one batch: r = log p_policy(y|x) - log p_ref(y|x); the KL estimate
    is the mean of that ratio over each prompt with the previous row's completion (rotated within groups of the
    training batch size, as TRL builds them), floored at 0; the loss is 1 - sigmoid(beta (r - KL)) for desirable
    rows and 1 - sigmoid(beta (KL - r)) for undesirable ones."""
    policy, reference = policy.eval(), reference.eval()

    def ratio(prompt, completion):
        return completion_log_prob(policy, tokenizer, prompt, completion) - completion_log_prob(
            reference, tokenizer, prompt, completion
        )

    r = np.array([ratio(row["prompt"], row["completion"]) for row in rows])
    label = np.array([row["label"] for row in rows])
    rotated = []
    for start in range(0, len(rows), BATCH):
        group = rows[start : start + BATCH]
        rotated += [(row, group[i - 1]["completion"]) for i, row in enumerate(group)]
    kl = max(np.mean([ratio(row["prompt"], completion) for row, completion in rotated]), 0.0)
    losses = np.where(label, 1 - 1 / (1 + np.exp(-beta * (r - kl))), 1 - 1 / (1 + np.exp(-beta * (kl - r))))
    chosen, rejected = beta * r[label].mean(), beta * r[~label].mean()
    return {
        "eval_rewards/chosen": chosen,
        "eval_rewards/rejected": rejected,
        "eval_rewards/margins": chosen - rejected,
        "eval_kl": kl,
        "eval_loss": losses.mean(),
    }


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_held_out_kto_figures_match_log_prob_ratios_and_the_pushed_card_carries_them(tmp_path, sft_dir, unpaired_dir):
    from huggingface_hub import ModelCard

    before = AutoModelForCausalLM.from_pretrained(sft_dir)
    metrics = main(*kto_args(tmp_path / "out", sft_dir, str(unpaired_dir), "--beta", "0.5"))

    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert any(not torch.equal(before.state_dict()[k], v) for k, v in trained.state_dict().items())
    rows = read_rows(unpaired_dir / "test.jsonl")
    expected = expected_eval(trained, before, load_tokenizer(sft_dir), rows, beta=0.5)
    assert abs(expected["eval_rewards/margins"]) > 1e-3, "the policy should have moved"
    assert expected["eval_kl"] > 1e-2, "KL at its floor of 0 would not check the estimate: pick another SEED"
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=2e-4, abs=1e-6), key
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved == metrics and np.isfinite(saved["train_loss"])
    card = (tmp_path / "out" / "README.md").read_text()
    assert "KTOTrainer" in card and "beta 0.5" in card and "7 desirable and 7 undesirable" in card

    # Pushed with --dry_run: the card names the default's Hub id (the SFT folder was made from it), the data named
    # on the command line, and every held-out figure of metrics.json as model-index; nothing names a local path
    argv = ["push", str(tmp_path / "out"), "me/kto-policy", "--dry_run", "--datasets", "me/prefs"]
    assert plumb_main(argv) == 0
    upload = tmp_path / "out.hub"
    pushed = ModelCard.load(upload / "README.md")
    assert pushed.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert pushed.data.datasets == ["me/prefs"] and pushed.data.license == "apache-2.0"
    assert pushed.data.pipeline_tag == "text-generation" and "kto" in pushed.data.tags
    figures = {result.metric_name: result.metric_value for result in pushed.data.eval_results}
    assert figures == {key: value for key, value in saved.items() if key.startswith("eval_")}
    assert {(r.dataset_type, r.dataset_split, r.task_type) for r in pushed.data.eval_results} == {
        ("me/prefs", "test", "text-generation")
    }
    assert not (upload / "training_args.bin").exists() and (upload / "model.safetensors").is_file()
    for path in upload.iterdir():
        if path.suffix != ".safetensors":
            assert str(tmp_path) not in path.read_text(errors="replace"), path.name
    assert yaml.safe_load((upload / "plumb_config.yaml").read_text())["dataset_name"] == unpaired_dir.name


def test_pairs_become_a_desirable_and_an_undesirable_row_each(tmp_path):
    pairs = [
        {
            "prompt": msgs("user", f"Name {topic}."),
            "chosen": msgs("assistant", good),
            "rejected": msgs("assistant", bad),
        }
        for topic, good, bad in zip(TOPICS, ANSWERS, REFUSALS)
    ]
    write_jsonl(tmp_path / "train.jsonl", pairs[:8])
    write_jsonl(tmp_path / "test.jsonl", pairs[8:])
    args = kto_args(tmp_path / "out", "unused", str(tmp_path))
    train, test = load_unpaired(args[0], seed=0)

    def labelled(split):
        return sorted((row["prompt"][0]["content"], row["completion"][0]["content"], row["label"]) for row in split)

    expected = sorted(
        (pair["prompt"][0]["content"], pair[side][0]["content"], side == "chosen")
        for pair in pairs
        for side in ("chosen", "rejected")
    )
    assert sorted(labelled(train) + labelled(test)) == expected
    assert len(train) == 16 and len(test) == 4
    # shuffled: TRL splits pairs into all desirable rows, then all undesirable; KTO batches rows in order
    first_batch = train.select(range(BATCH))["label"]
    assert 0 < sum(first_batch) < BATCH


def test_the_shipped_recipe_trains_from_the_command_line_with_lora(tmp_path, tiny_policy_dir):
    pairs = [
        {
            "prompt": msgs("user", f"Name {topic}."),
            "chosen": msgs("assistant", good),
            "rejected": msgs("assistant", bad),
        }
        for topic, good, bad in zip(TOPICS, ANSWERS, REFUSALS)
    ]
    write_jsonl(tmp_path / "pairs.jsonl", pairs)
    out = tmp_path / "out"
    argv = ["align", "kto", "--config", str(RECIPE), "--model_name_or_path", tiny_policy_dir]
    argv += ["--dataset_name", str(tmp_path / "pairs.jsonl"), "--test_size", "0.2", "--output_dir", str(out)]
    argv += ["--max_steps", "1", "--lora_r", "4", "--report_to", "none", "--max_length", "64"]
    assert plumb_main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"eval_rewards/chosen", "eval_rewards/rejected", "eval_kl", "eval_loss"} <= set(metrics)
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()  # merged
    assert yaml.safe_load((out / "plumb_config.yaml").read_text())["loss_type"] == "kto"


def test_settings_kto_cannot_train_with_fail_before_the_models_load(tmp_path, unpaired_dir, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the settings were checked")

    monkeypatch.setattr(align.kto, "load_policy", no_model)
    with pytest.raises(ConfigError, match="per_device_train_batch_size.*2 or more"):
        main(*kto_args(tmp_path / "out", "unused", str(unpaired_dir), "--per_device_train_batch_size", "1"))
    with pytest.raises(ConfigError, match="loss_type"):
        kto_args(tmp_path / "out", "unused", str(unpaired_dir), "--loss_type", "sigmoid")
