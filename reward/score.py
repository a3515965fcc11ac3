"""Score conversations with one reward model or an ensemble, in batches, and write the scores as columns.

Used for best-of-n, pre-labels and active learning: an ensemble (models trained with
different seeds) gives each response a mean reward and a spread, and each pair a spread
of its margin, which is where the models disagree.

    plumb reward score --model_name_or_path outputs/reward-demo --dataset_name builtin:prefs --output_path scored.jsonl
    plumb reward score --model_name_or_path run-a,run-b,run-c --dataset_name candidates.jsonl --output_path out.parquet
"""

import json
import logging
from pathlib import Path

import numpy as np

from plumb.config import parse_config
from plumb.data import DataError, detect_kind, load_records, to_conversational
from plumb.models import ModelLoadError, load_reward_backbone
from reward.config import ScoreArguments
from reward.encoding import encode_conversation

logger = logging.getLogger(__name__)


def config_types() -> tuple:
    """The dataclasses a `plumb reward score` config fills."""
    return (ScoreArguments,)


def cli(argv: list[str], *, prog: str) -> int:
    """Parse flags, then score."""
    main(*parse_config(config_types(), argv, prog=prog))
    return 0


def main(args: ScoreArguments):
    """Score every response of the dataset, write it with the score columns added; returns that dataset."""
    # Models
    reward_models = [load_reward_model(path) for path in model_paths(args.model_name_or_path)]

    # Dataset
    dataset = to_conversational(load_records(args.dataset_name, args.dataset_split))
    kind = detect_kind(dataset)
    if kind not in ("pairwise", "unpaired", "ranking"):
        raise DataError(
            f"{args.dataset_name}: {kind} data has no responses to score (need chosen/rejected, "
            "completion or completions)"
        )

    # Scoring
    max_length = args.max_length or trained_max_length(model_paths(args.model_name_or_path)[0])
    columns = score_columns(
        dataset, kind, reward_models, column=args.column, max_length=max_length, batch_size=args.batch_size
    )
    for name, values in columns.items():
        dataset = dataset.add_column(name, values)
    write_dataset(dataset, args.output_path)
    logger.info(
        "Scored %d rows (%s data) with %d model(s); wrote %s to %s",
        len(dataset),
        kind,
        len(reward_models),
        ", ".join(columns),
        args.output_path,
    )
    return dataset


def model_paths(spec: str) -> list[str]:
    """The model directories of a comma-separated spec (one model, or an ensemble)."""
    paths = [part.strip() for part in spec.split(",") if part.strip()]
    if not paths:
        raise ModelLoadError("no reward model given: name a trained reward model directory")
    return paths


def load_reward_model(path: str):
    """(model in eval mode, tokenizer) of a trained reward model; a causal LM without a reward head is refused."""
    config_file = Path(path).expanduser() / "config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text())
        architectures = config.get("architectures") or []
        if not any(name.endswith("ForSequenceClassification") for name in architectures):
            raise ModelLoadError(
                f"{path} is a {', '.join(architectures) or 'model'} without a reward head (a sequence-classification "
                f"layer with one output), so its scores would be random. Train a reward model from it first: "
                f"`plumb reward train --model_name_or_path {path} --output_dir DIR`, then score with DIR."
            )
        if config.get("num_labels", len(config.get("id2label") or {0: 0})) != 1:
            raise ModelLoadError(f"{path} is a classifier with several outputs; a reward model has exactly one")
    model, tokenizer = load_reward_backbone(path)
    return model.eval(), tokenizer


def trained_max_length(path: str, default: int = 512) -> int:
    """The max_length a reward model was trained with (its plumb_config.yaml), so scoring cuts inputs the same way."""
    import yaml

    config_file = Path(path).expanduser() / "plumb_config.yaml"
    config = yaml.safe_load(config_file.read_text()) if config_file.is_file() else {}
    return config.get("max_length") or default


def score_conversations(
    reward_model,
    conversations: list[list[dict]],
    *,
    max_length: int | None = 512,
    batch_size: int = 32,
    progress: bool = True,
) -> np.ndarray:
    """Rewards of conversations (message lists), shape (len(conversations),), batched longest-first."""
    return _batched(
        reward_model, conversations, lambda output, batch: output.logits[:, 0], max_length, batch_size, progress
    )


def embed_conversations(
    reward_model, conversations: list[list[dict]], *, max_length: int | None = 512, batch_size: int = 32
) -> np.ndarray:
    """The reward model's own view of each conversation: its last hidden layer, mean-pooled, shape (n, hidden)."""

    def pooled(output, batch):
        mask = batch["attention_mask"].unsqueeze(-1).to(output.hidden_states[-1].dtype)
        return (output.hidden_states[-1] * mask).sum(1) / mask.sum(1).clamp(min=1)

    return _batched(reward_model, conversations, pooled, max_length, batch_size, False, output_hidden_states=True)


def _batched(reward_model, conversations, read, max_length, batch_size, progress, **model_kwargs) -> np.ndarray:
    import torch
    from tqdm.auto import tqdm

    model, tokenizer = reward_model
    encoded = [encode_conversation(tokenizer, conversation, max_length)[0] for conversation in conversations]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))  # similar lengths share a batch: less padding
    values = None
    batches = range(0, len(order), batch_size)
    with torch.inference_mode():
        for start in tqdm(batches, desc="Scoring", unit="batch", disable=not progress):
            members = order[start : start + batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in members]}, return_tensors="pt")
            batch = {key: value.to(model.device) for key, value in batch.items()}
            out = read(model(**batch, **model_kwargs), batch).float().cpu().numpy()
            if values is None:
                values = np.zeros((len(encoded), *out.shape[1:]))
            values[members] = out
    return values if values is not None else np.zeros(0)


def member_scores(reward_models, conversations, **kwargs) -> np.ndarray:
    """Rewards of each conversation from each model of an ensemble, shape (len(reward_models), len(conversations))."""
    return np.stack([score_conversations(model, conversations, **kwargs) for model in reward_models])


def score_columns(dataset, kind: str, reward_models, *, column: str, **kwargs) -> dict[str, list]:
    """The new columns for a dataset of `kind`: mean rewards, and for an ensemble their spread (std over models)."""
    prompts = dataset["prompt"]
    ensemble = len(reward_models) > 1
    if kind == "ranking":
        owners, conversations = zip(
            *[(i, p + c) for i, (p, cs) in enumerate(zip(prompts, dataset["completions"])) for c in cs]
        )
        scores, owners = member_scores(reward_models, list(conversations), **kwargs), np.array(owners)

        def per_row(values):  # the flat scores back into one list per ranking row
            return [values[owners == i].tolist() for i in range(len(dataset))]

        columns = {column: per_row(scores.mean(axis=0))}
        if ensemble:
            columns[f"{column}_std"] = per_row(scores.std(axis=0))
        return columns
    columns, scores = {}, {}
    for response in ("chosen", "rejected") if kind == "pairwise" else ("completion",):
        scores[response] = member_scores(reward_models, [p + r for p, r in zip(prompts, dataset[response])], **kwargs)
        name = column if kind == "unpaired" else f"{response}_{column}"
        columns[name] = scores[response].mean(axis=0).tolist()
        if ensemble:
            columns[f"{name}_std"] = scores[response].std(axis=0).tolist()
    if kind == "pairwise" and ensemble:  # where the models disagree about the pair: the active-learning signal
        columns[f"{column}_margin_std"] = (scores["chosen"] - scores["rejected"]).std(axis=0).tolist()
    return columns


def write_dataset(dataset, output_path: str) -> None:
    """Write a dataset as .jsonl, .parquet or (any other path) a save_to_disk directory."""
    path = Path(output_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        dataset.to_json(str(path), lines=True, force_ascii=False)
    elif path.suffix == ".parquet":
        dataset.to_parquet(str(path))
    else:
        dataset.save_to_disk(str(path))
