"""Does a reward model trained on one domain's human preferences hold up on the others?

Reads the three shared sets under --data (../shared/data: hh-rlhf-harmless/pairs.jsonl.gz,
pandalm/judgments.json, oasst/en_100_tree.jsonl) with the loaders the other benches use, and
turns each into the data contract:

- hh-rlhf harmless: pairs, the prompt the transcripts' common turns (loop.demo_assets.read_pairs,
  as bench/reward_real.py), pairs with an empty reply left out;
- PandaLM: one pair per item whose three annotators have a strict majority for one response
  (items with a majority for "tie" or no majority, and empty or non-text responses, left out, counted);
  `meta.agreement` is the majority's share, so the table's agreement ceiling is the raters';
- Open-Assistant: fully ranked sibling groups as rankings (bench/ranking_loss.py's reader),
  evaluated as their pairs (ties give none).

The --train domain is split by prompt (plumb.data.split_by_prompt): the offline default reward
model (MiniLM) trains on the larger part with `plumb reward train`'s own code, then
`plumb reward eval --eval_sets`'s own code scores the held-out part (in-domain) and every other
domain whole. Prints the cross-domain table, then, last, one JSON line.

    .venv/bin/python bench/reward_domains.py --data ../shared/data --train hh
    .venv/bin/python bench/reward_domains.py --data ../shared/data --limit 60 --epochs 1   # a quick check
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

DOMAINS = {
    "hh": "hh-rlhf-harmless/pairs.jsonl.gz",
    "pandalm": "pandalm/judgments.json",
    "oasst": "oasst/en_100_tree.jsonl",
}


def hh_pairs(path: Path) -> tuple[list[dict], str]:
    """hh-rlhf transcripts as contract pairs, and a note of what was left out."""
    from loop.demo_assets import read_pairs

    pairs, dropped = read_pairs(path)
    return pairs, f"{dropped} with an empty reply left out"


def pandalm_pairs(path: Path) -> tuple[list[dict], str]:
    """PandaLM items as pairs by strict majority of the annotators (ties and split votes left out), with agreement."""
    from bench.agreement_real import annotator_columns, read_items

    items = read_items(path)
    annotators = annotator_columns(items)
    pairs, tie_or_split, not_text = [], 0, 0
    for item in items:
        votes = [item[a] for a in annotators if item.get(a) is not None]
        winner = next((code for code in (1, 2) if votes.count(code) * 2 > len(votes)), None)
        if winner is None:
            tie_or_split += 1
            continue
        responses = item["response1"], item["response2"]
        if not all(isinstance(text, str) and text.strip() for text in responses):
            not_text += 1
            continue
        prompt = item["instruction"] + (f"\n\n{item['input']}" if item.get("input") else "")
        pairs.append(
            {
                "prompt": prompt,
                "chosen": responses[winner - 1],
                "rejected": responses[2 - winner],
                "meta": {"agreement": votes.count(winner) / len(votes), "raters": len(votes)},
            }
        )
    note = f"{tie_or_split} without a majority for one response, {not_text} with an empty or non-text reply left out"
    return pairs, note


def oasst_rankings(path: Path) -> tuple[list[dict], str]:
    """Open-Assistant's fully ranked sibling groups as ranking rows, and a note of the partly ranked ones."""
    from bench.ranking_loss import read_rankings

    rows, partial = read_rankings(path)
    return rows, f"{partial} partly ranked groups left out"


READERS = {"hh": hh_pairs, "pandalm": pandalm_pairs, "oasst": oasst_rankings}


def parse_arguments(argv=None) -> argparse.Namespace:
    """The bench's flags: the data folder, the training domain and the few training settings worth varying."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="the shared data folder (../shared/data)")
    parser.add_argument("--train", choices=list(DOMAINS), default="hh", help="the domain to train on")
    parser.add_argument("--held-out", type=float, default=0.2, help="share of the training domain's prompts held out")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N rows of each domain (checks)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens kept per conversation (its end)")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--freeze-layers", type=int, default=3, help="frozen lowest blocks (and embeddings)")
    parser.add_argument("--output-dir", type=Path, default=None, help="where the model goes (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def write_jsonl(rows: list[dict], path: Path) -> Path:
    """Write rows as JSON Lines; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return path


def train_flags(args, train_file: Path, output_dir: Path) -> list[str]:
    """`plumb reward train` flags: the whole training part, no dev share (the in-domain held-out part is scored)."""
    flags = {
        "model_name_or_path": "default",
        "dataset_name": str(train_file),
        "test_size": "0",
        "output_dir": str(output_dir),
        "max_length": str(args.max_length),
        "num_train_epochs": str(args.epochs),
        "learning_rate": str(args.learning_rate),
        "per_device_train_batch_size": str(args.batch_size),
        "per_device_eval_batch_size": "32",
        "train_sampling_strategy": "group_by_length",
        "gradient_checkpointing": "false",
        "center_rewards_coefficient": "0.01",
        "warmup_steps": "10",
        "seed": str(args.seed),
        "freeze_layers": str(args.freeze_layers),
        "logging_steps": "10",
        "save_strategy": "no",
        "report_to": "none",
    }
    return [item for key, value in flags.items() for item in (f"--{key}", value)]


def set_figures(report: dict) -> dict:
    """The JSON line's figures of one evaluation set, rounded; the raters' ceiling where several judged."""
    figures = {
        "pairs": report["pairs"],
        "accuracy": round(report["accuracy"], 4),
        "accuracy_ci95": [round(x, 4) for x in report["accuracy_ci95"]],
        "ece": round(report["ece"], 4),
        "length_baseline_accuracy": round(report["length_baseline_accuracy"], 4),
        "reward_length_spearman": round(report["reward_length_spearman"], 4),
    }
    if "agreement_ceiling" in report:
        figures["agreement_ceiling"] = round(report["agreement_ceiling"], 4)
    return figures


def main(argv=None) -> dict:
    """Convert, split, train, evaluate on every domain; print the table and the JSON line; returns the figures."""
    from plumb.cli import configure_logging
    from plumb.config import parse_config
    from plumb.data import rows_to_dataset, split_by_prompt
    from reward import eval_sets, train
    from reward.config import EvalArguments

    configure_logging()
    args = parse_arguments(argv)
    work = Path(tempfile.mkdtemp(prefix="plumb-domains-bench-"))
    output_dir = args.output_dir or work / "model"

    sets, notes = {}, {}
    for domain, relative in DOMAINS.items():
        rows, notes[domain] = READERS[domain](args.data / relative)
        sets[domain] = rows[: args.limit] if args.limit else rows
        print(f"{domain}: {len(sets[domain])} rows ({notes[domain]})", file=sys.stderr)

    trained_on, held_out = split_by_prompt(
        rows_to_dataset(sets[args.train], source=args.train), test_size=args.held_out, seed=args.seed
    )
    train_file = write_jsonl(list(trained_on), work / "train.jsonl")
    files = {f"{args.train} (held out)": write_jsonl(list(held_out), work / f"{args.train}-held-out.jsonl")}
    files.update({d: write_jsonl(rows, work / f"{d}.jsonl") for d, rows in sets.items() if d != args.train})

    started = time.time()
    metrics = train.main(*parse_config(train.config_types(), train_flags(args, train_file, output_dir)))
    train_seconds = time.time() - started

    result = eval_sets.main(
        EvalArguments(
            model_name_or_path=str(output_dir),
            eval_sets=",".join(str(path) for path in files.values()),
            dataset_split="train",
            max_length=args.max_length,
            seed=args.seed,
            output_dir=str(work / "eval"),
        )
    )
    for name, report in zip(files, result["sets"]):
        report["name"] = name  # the domain, not the temporary file's path
    print(f"Trained on {args.train}: {len(trained_on)} rows, {train_seconds:.0f} s")
    print(eval_sets.format_table(result))
    figures = {
        "train_domain": args.train,
        "train_rows": len(trained_on),
        "train_seconds": round(train_seconds, 1),
        "trainer_runtime_seconds": round(metrics["train_runtime_s"], 1),
        "sets": {report["name"]: set_figures(report) for report in result["sets"]},
        "left_out": notes,
        "limit": args.limit,
        "held_out_share": args.held_out,
        "max_length": args.max_length,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "freeze_layers": args.freeze_layers,
        "seed": args.seed,
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
