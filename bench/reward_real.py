"""Train Plumb's default reward model on real human preferences and measure it on held-out ones.

Takes two files in the layout of ../shared/data/hh-rlhf-harmless/pairs.jsonl.gz (gzipped
JSON Lines, whole "\\n\\nHuman: ...\\n\\nAssistant: ..." transcripts in `chosen` and
`rejected`), turns them into the data contract's conversational pairs (the prompt is the
common prefix of the two transcripts), trains the offline default encoder on the first
with `plumb reward train`'s own code, and evaluates on the second with `plumb reward eval`'s.
Prints the evaluation table, then, last, one JSON line with the figures.

    python bench/reward_real.py --train /tmp/hh/train.jsonl.gz --eval /tmp/hh/eval.jsonl.gz
"""

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from loop.demo_assets import to_pair  # noqa: E402  (hh-rlhf transcripts to contract pairs, as the demo's assets)


def has_empty_response(pair: dict) -> bool:
    """True when the chosen or the rejected reply has no text (a few hh-rlhf transcripts end mid-turn)."""
    return any(not "".join(m["content"] for m in pair[side]).strip() for side in ("chosen", "rejected"))


def convert(source: Path, target: Path) -> int:
    """Write the pairs of an hh-rlhf file as contract JSONL, leaving out (and counting) empty replies: the count."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as handle:
        pairs = [to_pair(json.loads(line)) for line in handle if line.strip()]
    kept = [pair for pair in pairs if not has_empty_response(pair)]
    if len(kept) < len(pairs):
        print(f"{source}: left out {len(pairs) - len(kept)} of {len(pairs)} pairs with an empty reply", file=sys.stderr)
    with target.open("w", encoding="utf-8") as out:
        for pair in kept:
            out.write(json.dumps(pair, ensure_ascii=False) + "\n")
    return len(kept)


def parse_arguments(argv=None) -> argparse.Namespace:
    """The bench's flags: the two files and the few training settings worth varying."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, type=Path, help="hh-rlhf-layout file to train on")
    parser.add_argument("--eval", required=True, type=Path, help="hh-rlhf-layout file to evaluate on")
    parser.add_argument("--output-dir", type=Path, default=None, help="where the model goes (default: a temp dir)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens kept per conversation (its end)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--freeze-layers", type=int, default=3, help="frozen lowest blocks (and embeddings)")
    parser.add_argument(
        "--dev-size",
        type=float,
        default=0.1,
        help="share of --train held out to pick the best epoch (0: train on all of it)",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def train_flags(args, train_file: Path, output_dir: Path) -> list[str]:
    """`plumb reward train` flags; a dev share of the training file, never the eval file, picks the best epoch."""
    flags = [
        "--model_name_or_path",
        "default",
        "--dataset_name",
        str(train_file),
        "--test_size",
        str(args.dev_size),
        "--output_dir",
        str(output_dir),
        "--max_length",
        str(args.max_length),
        "--num_train_epochs",
        str(args.epochs),
        "--learning_rate",
        str(args.learning_rate),
        "--per_device_train_batch_size",
        str(args.batch_size),
        "--per_device_eval_batch_size",
        "32",
        "--train_sampling_strategy",
        "group_by_length",
        "--gradient_checkpointing",
        "false",
        "--center_rewards_coefficient",
        "0.01",
        "--warmup_steps",
        "10",
        "--seed",
        str(args.seed),
        "--freeze_layers",
        str(args.freeze_layers),
        "--logging_steps",
        "10",
        "--report_to",
        "none",
    ]
    if args.dev_size:
        flags += [
            "--eval_strategy",
            "epoch",
            "--save_strategy",
            "epoch",
            "--save_total_limit",
            "1",
            "--early_stopping_patience",
            "1",
        ]
    else:
        flags += ["--save_strategy", "no"]
    return flags


def main(argv=None) -> dict:
    """Convert, train, evaluate; print the table and the JSON line; returns the figures."""
    from plumb.cli import configure_logging
    from plumb.config import parse_config
    from reward import evaluate, train
    from reward.config import EvalArguments

    configure_logging()
    args = parse_arguments(argv)
    work = Path(tempfile.mkdtemp(prefix="plumb-reward-bench-"))
    output_dir = args.output_dir or work / "model"
    train_pairs = convert(args.train, work / "train.jsonl")
    eval_pairs = convert(args.eval, work / "eval.jsonl")

    started = time.time()
    metrics = train.main(*parse_config(train.config_types(), train_flags(args, work / "train.jsonl", output_dir)))
    train_seconds = time.time() - started

    report = evaluate.main(
        EvalArguments(
            model_name_or_path=str(output_dir),
            dataset_name=str(work / "eval.jsonl"),
            dataset_split="train",
            max_length=args.max_length,
            seed=args.seed,
        )
    )
    print(evaluate.format_table(report))
    figures = {
        "accuracy": round(report["accuracy"], 4),
        "accuracy_ci95": [round(x, 4) for x in report["accuracy_ci95"]],
        "ece": round(report["ece"], 4),
        "length_baseline_accuracy": round(report["length_baseline_accuracy"], 4),
        "reward_length_spearman": round(report["reward_length_spearman"], 4),
        "train_seconds": round(train_seconds, 1),
        "trainer_runtime_seconds": round(metrics["train_runtime_s"], 1),
        "train_pairs": train_pairs,
        "eval_pairs": eval_pairs,
        "max_length": args.max_length,
        "epochs": args.epochs,
        "truncated_share_train": round(metrics["train_truncated_share"], 4),
        "dev_size": args.dev_size,
        "freeze_layers": args.freeze_layers,
        "learning_rate": args.learning_rate,
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
