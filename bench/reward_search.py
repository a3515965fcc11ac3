"""Does `plumb reward train --hp_search` beat the default recipe on real human preferences, and at what cost?

Splits ../shared/data/hh-rlhf-harmless/pairs.jsonl.gz as the README's figure for bench/reward_real.py
does (every 5th line held out: 1,450 train / 362 held-out pairs), converts both parts with that bench's
own functions, then trains (1) its default recipe once and (2) an Optuna search of N trials over
learning rate, epochs and frozen blocks, scored on a dev share of the training file, followed by a normal
run of the best trial's best_config.yaml. Both models are scored on the held-out pairs with
`plumb reward eval`'s code. Prints a table, then, last, one JSON line.

    .venv/bin/python bench/reward_search.py --data ../shared/data/hh-rlhf-harmless/pairs.jsonl.gz --trials 8
    .venv/bin/python bench/reward_search.py --limit 60 --trials 2 --epochs 1   # a quick check that it runs
"""

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from bench import reward_real  # noqa: E402  (the conversion and the default recipe being compared against)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/hh-rlhf-harmless/pairs.jsonl.gz"
SPACE = {
    "learning_rate": {"low": 2e-5, "high": 5e-4, "log": True},
    "num_train_epochs": {"choices": [1, 2, 3]},
    "freeze_layers": {"choices": [0, 3, 5]},
}


def parse_arguments(argv=None) -> argparse.Namespace:
    """The bench's flags: the data, the number of trials, a row limit for quick checks."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="hh-rlhf harmless pairs.jsonl.gz")
    parser.add_argument("--trials", type=int, default=8, help="Optuna trials in the search")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N lines (a quick check)")
    parser.add_argument("--epochs", type=float, default=2.0, help="epochs of the default recipe")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def split_every_fifth(source: Path, work: Path, limit: int | None) -> tuple[Path, Path]:
    """Write the hh-rlhf lines as train.jsonl.gz and held-out.jsonl.gz, every 5th line (4, 9, ...) held out."""
    with gzip.open(source, "rt", encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip()][:limit]
    parts = {"train": [], "held-out": []}
    for i, line in enumerate(lines):
        parts["held-out" if i % 5 == 4 else "train"].append(line)
    paths = []
    for name, rows in parts.items():
        path = work / f"{name}.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as out:
            out.writelines(rows)
        paths.append(path)
    return paths[0], paths[1]


def held_out_accuracy(model_dir: Path, eval_file: Path, args) -> dict:
    """`plumb reward eval`'s report of a trained model on the held-out pairs."""
    from reward import evaluate
    from reward.config import EvalArguments

    return evaluate.main(
        EvalArguments(
            model_name_or_path=str(model_dir),
            dataset_name=str(eval_file),
            dataset_split="train",
            max_length=args.max_length,
            seed=args.seed,
        )
    )


def search_flags(recipe, train_file: Path, output_dir: Path) -> list[str]:
    """The default recipe's flags for the search: a dev share scored each epoch, no checkpoints between trials."""
    flags = reward_real.train_flags(recipe, train_file, output_dir)
    for key in ("--save_strategy", "--save_total_limit", "--early_stopping_patience"):
        if key in flags:
            at = flags.index(key)
            del flags[at : at + 2]
    return [*flags, "--save_strategy", "no"]


def main(argv=None) -> dict:
    """Split, train the default and the searched recipe, evaluate both; print the table and the JSON line."""
    from plumb.cli import configure_logging
    from plumb.config import parse_config
    from reward import train

    configure_logging()
    args = parse_arguments(argv)
    work = Path(tempfile.mkdtemp(prefix="plumb-search-bench-"))
    raw_train, raw_eval = split_every_fifth(args.data, work, args.limit)
    train_pairs = reward_real.convert(raw_train, work / "train.jsonl")
    eval_pairs = reward_real.convert(raw_eval, work / "eval.jsonl")
    recipe = reward_real.parse_arguments(
        ["--train", str(raw_train), "--eval", str(raw_eval), "--epochs", str(args.epochs)]
        + ["--max-length", str(args.max_length), "--seed", str(args.seed)]
    )

    started = time.time()
    default_flags = reward_real.train_flags(recipe, work / "train.jsonl", work / "default")
    train.main(*parse_config(train.config_types(), default_flags))
    default_seconds = time.time() - started
    default_report = held_out_accuracy(work / "default", work / "eval.jsonl", args)

    started = time.time()
    script_args, training_args, model_args = parse_config(
        train.config_types(), search_flags(recipe, work / "train.jsonl", work / "search")
    )
    script_args.hp_search, script_args.hp_space, script_args.hp_trials = True, SPACE, args.trials
    summary = train.main(script_args, training_args, model_args)
    search_seconds = time.time() - started
    started = time.time()
    train.main(*parse_config(train.config_types(), ["--config", str(work / "search" / "best_config.yaml")]))
    best_seconds = time.time() - started
    best_report = held_out_accuracy(work / "search" / "best", work / "eval.jsonl", args)

    best_values = {k.removeprefix("hp_best_"): v for k, v in summary.items() if k.removeprefix("hp_best_") in SPACE}
    default_settings = f"lr {recipe.learning_rate:g}, freeze {recipe.freeze_layers}, {args.epochs:g} epochs"
    rows = [
        ("default recipe", default_report, default_seconds, default_settings),
        (f"best of {args.trials} trials", best_report, search_seconds + best_seconds, json.dumps(best_values)),
    ]
    print(f"{'run':<20} {'held-out acc':>12} {'95% CI':>15} {'seconds':>9}  settings")
    for name, report, seconds, settings in rows:
        low, high = report["accuracy_ci95"]
        print(f"{name:<20} {report['accuracy']:>12.3f} {f'{low:.3f}-{high:.3f}':>15} {seconds:>9.0f}  {settings}")
    figures = {
        "default_accuracy": round(default_report["accuracy"], 4),
        "default_accuracy_ci95": [round(x, 4) for x in default_report["accuracy_ci95"]],
        "default_seconds": round(default_seconds, 1),
        "search_accuracy": round(best_report["accuracy"], 4),
        "search_accuracy_ci95": [round(x, 4) for x in best_report["accuracy_ci95"]],
        "search_seconds": round(search_seconds, 1),
        "best_rerun_seconds": round(best_seconds, 1),
        "trials": args.trials,
        "best_dev_accuracy": summary["hp_best_eval_accuracy"],
        "best": best_values,
        "train_pairs": train_pairs,
        "eval_pairs": eval_pairs,
        "max_length": args.max_length,
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
