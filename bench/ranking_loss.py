"""Listwise (Plackett-Luce) against pairwise expansion, on real human rankings: Open-Assistant's trees.

Reads ../shared/data/oasst/en_100_tree.jsonl (nested `replies`; a reply's `rank` is 0 for the
best of its siblings, null when unranked), turns every group of two or more fully ranked
sibling replies into a ranking row of the data contract (prompt: the conversation down to the
parent message, prompter as user; completions: the ranked replies; ranks: rank + 1), and
leaves out, counted, groups with an unranked reply. The trees are dealt into k folds: fold f's
trees are held out while the model trains on the others' rankings, with seed f, so every
ranking is held out exactly once and never trained on by the model that scores it. Each fold
trains the offline default reward model (MiniLM) twice with `plumb reward train`'s own code,
`ranking_loss: pairwise` (the rankings' pairs) and `plackett_luce` (whole rankings), with
the same epochs, learning rate, max_length and frozen layers, then scores every held-out
completion once and measures accuracy on all pairs of the held-out rankings.

Prints a table per fold and the pooled figures, then, last, one JSON line. The defaults
(3 folds, 2 epochs, max_length 128, 3 of MiniLM's 6 blocks frozen, lr 1e-4) keep the whole
bench to about 40 CPU-minutes (so roughly 20-25 minutes on 2 quiet cores; 73 minutes at load
average 5.7); the pairwise batch is 16 pairs and the listwise one 4 rankings, which gives both
about the same number of optimizer steps (Plackett-Luce scores each completion once per epoch,
pairwise once per pair it is in, so it trains in about 60% of the time).

    python bench/ranking_loss.py --data ../shared/data/oasst/en_100_tree.jsonl
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

ROLES = {"prompter": "user", "assistant": "assistant"}
LOSSES = ("pairwise", "plackett_luce")


def tree_rankings(tree: dict) -> tuple[list[dict], int]:
    """(ranking rows of one Open-Assistant tree, groups left out for an unranked reply); rows carry `meta.tree`."""
    rows, partial = [], 0
    stack = [(tree["prompt"], [])]
    while stack:
        node, before = stack.pop()
        conversation = before + [{"role": ROLES[node["role"]], "content": node["text"]}]
        replies = [reply for reply in node.get("replies") or [] if not reply.get("deleted")]
        ranked = [reply for reply in replies if reply.get("rank") is not None]
        if len(replies) >= 2 and len(ranked) == len(replies):
            rows.append(
                {
                    "prompt": conversation,
                    "completions": [[{"role": ROLES[r["role"]], "content": r["text"]}] for r in replies],
                    "ranks": [r["rank"] + 1 for r in replies],
                    "meta": {"tree": tree["message_tree_id"]},
                }
            )
        elif ranked:
            partial += 1
        stack.extend((reply, conversation) for reply in replies)
    return rows, partial


def read_rankings(path: Path) -> tuple[list[dict], int]:
    """All ranking rows of an Open-Assistant tree file, and how many partly ranked groups were left out."""
    rows, partial = [], 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                tree_rows, tree_partial = tree_rankings(json.loads(line))
                rows += tree_rows
                partial += tree_partial
    return rows, partial


def tree_folds(rows: list[dict], folds: int, seed: int = 0) -> list[int]:
    """The fold of each row: its tree's, trees dealt round-robin after a seeded shuffle."""
    trees = sorted({row["meta"]["tree"] for row in rows})
    order = np.random.default_rng(seed).permutation(len(trees))
    fold_of = {trees[index]: position % folds for position, index in enumerate(order)}
    return [fold_of[row["meta"]["tree"]] for row in rows]


def parse_arguments(argv=None) -> argparse.Namespace:
    """The bench's flags: the tree file, the folds and the training settings both losses share."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="Open-Assistant tree file (JSON Lines)")
    parser.add_argument("--folds", type=int, default=3, help="folds of trees; fold f trains with seed f")
    parser.add_argument(
        "--max-length",
        type=int,
        default=128,
        help="tokens kept per conversation (its end); 128 cuts most conversations to the reply (median reply 124 "
        "tokens, with prompt 252) but keeps the bench to about 40 CPU-minutes",
    )
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16, help="pairs per batch (pairwise)")
    parser.add_argument(
        "--ranking-batch-size",
        type=int,
        default=4,
        help="rankings per batch (plackett_luce); 4 rankings of about 3 replies give about as many steps per epoch "
        "as 16 of their pairs",
    )
    parser.add_argument("--freeze-layers", type=int, default=3, help="frozen lowest blocks (and embeddings)")
    parser.add_argument("--output-dir", type=Path, default=None, help="keep the models here (default: deleted)")
    return parser.parse_args(argv)


def train_flags(args, loss: str, train_file: Path, output_dir: Path, seed: int) -> list[str]:
    """`plumb reward train` flags for one fold and loss: everything but the batch (pairs or rankings) is shared."""
    batch = args.batch_size if loss == "pairwise" else args.ranking_batch_size
    flags = {
        "model_name_or_path": "default",
        "dataset_name": str(train_file),
        "test_size": "0",  # the held-out fold is scored here, ranking by ranking
        "ranking_loss": loss,
        "output_dir": str(output_dir),
        "max_length": str(args.max_length),
        "num_train_epochs": str(args.epochs),
        "learning_rate": str(args.learning_rate),
        "per_device_train_batch_size": str(batch),
        "train_sampling_strategy": "group_by_length",
        "gradient_checkpointing": "false",
        "center_rewards_coefficient": "0.01",
        "warmup_steps": "10",
        "seed": str(seed),
        "freeze_layers": str(args.freeze_layers),
        "logging_steps": "10",
        "save_strategy": "no",
        "report_to": "none",
    }
    return [item for key, value in flags.items() for item in (f"--{key}", value)]


def held_out_correct(model_dir: Path, rows: list[dict], max_length: int) -> list[np.ndarray]:
    """Per held-out ranking, the correctness (1, 0.5 on a tie, 0) of each of its pairs; each completion scored once."""
    from plumb.data import ranking_pairs
    from reward.metrics import pair_correct
    from reward.score import load_reward_model, score_conversations

    reward_model = load_reward_model(str(model_dir))
    conversations = [row["prompt"] + completion for row in rows for completion in row["completions"]]
    scores = score_conversations(reward_model, conversations, max_length=max_length, batch_size=32, progress=False)
    correct, start = [], 0
    for row in rows:
        own = scores[start : start + len(row["completions"])]
        start += len(row["completions"])
        pairs = ranking_pairs(row["ranks"])
        correct.append(pair_correct([own[i] for i, _ in pairs], [own[j] for _, j in pairs]))
    return correct


def tree_bootstrap(differences: dict[str, list[float]], samples: int = 2000, seed: int = 0) -> list[float]:
    """95% interval of the pooled accuracy difference, resampling held-out trees (pairs of one tree move together)."""
    trees = list(differences)
    sums = np.array([sum(differences[tree]) for tree in trees])
    counts = np.array([len(differences[tree]) for tree in trees])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(trees), size=(samples, len(trees)))
    values = sums[picks].sum(1) / counts[picks].sum(1)
    return [float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))]


def run_fold(args, fold: int, train_rows, test_rows, work: Path) -> dict:
    """Train both losses on one fold's training trees; their per-pair correctness on its held-out trees, and times."""
    from plumb.config import parse_config
    from reward import train

    train_file = work / f"fold{fold}-train.jsonl"
    train_file.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in train_rows))
    result = {}
    for loss in LOSSES:
        output_dir = (args.output_dir or work) / f"fold{fold}-{loss}"
        started = time.time()
        metrics = train.main(*parse_config(train.config_types(), train_flags(args, loss, train_file, output_dir, fold)))
        trained = time.time() - started
        correct = held_out_correct(output_dir, test_rows, args.max_length)
        result[loss] = {
            "correct": correct,
            "train_seconds": trained,
            "eval_seconds": time.time() - started - trained,
            "train_loss": metrics["train_loss"],
            "truncated_share": metrics["train_truncated_share"],
        }
        if args.output_dir is None:
            shutil.rmtree(output_dir, ignore_errors=True)
    return result


def main(argv=None) -> dict:
    """Convert, train both losses on every fold, evaluate; print the table and the JSON line; returns the figures."""
    from plumb.cli import configure_logging
    from plumb.data import ranking_pairs

    configure_logging()
    args = parse_arguments(argv)
    started = time.time()
    rows, partial = read_rankings(args.data)
    folds = tree_folds(rows, args.folds)
    trees = len({row["meta"]["tree"] for row in rows})
    pairs = sum(len(ranking_pairs(row["ranks"])) for row in rows)
    print(f"{args.data}: {len(rows)} fully ranked groups ({pairs} pairs) from {trees} trees; {partial} partly ranked")

    work = Path(tempfile.mkdtemp(prefix="plumb-ranking-bench-"))
    per_fold, by_tree, loads = [], {loss: {} for loss in LOSSES}, [os.getloadavg()[0]]
    for fold in range(args.folds):
        test_rows = [row for row, f in zip(rows, folds) if f == fold]
        result = run_fold(args, fold, [row for row, f in zip(rows, folds) if f != fold], test_rows, work)
        summary = {
            "fold": fold,
            "rankings": len(test_rows),
            "pairs": sum(len(c) for c in result["pairwise"]["correct"]),
        }
        for loss in LOSSES:
            summary[loss] = float(np.concatenate(result[loss]["correct"]).mean())
            summary[f"{loss}_train_s"] = result[loss]["train_seconds"]
            summary[f"{loss}_truncated_share"] = result[loss]["truncated_share"]  # of pairs (pw), completions (pl)
            for row, correct in zip(test_rows, result[loss]["correct"]):
                by_tree[loss].setdefault(row["meta"]["tree"], []).extend(correct.tolist())
        loads.append(os.getloadavg()[0])
        per_fold.append(summary)
        print(json.dumps(summary), flush=True)
    shutil.rmtree(work, ignore_errors=True)

    figures = report(args, per_fold, by_tree, time.time() - started, loads)
    print(json.dumps(figures))
    return figures


def spread(values: list[float]) -> float:
    """Sample standard deviation (0 for one value)."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def report(args, per_fold: list[dict], by_tree: dict, seconds: float, loads: list[float]) -> dict:
    """Print the table of folds and the pooled accuracies; return the figures of the JSON line."""
    print("\n| fold (= seed) | held-out rankings | pairs | pairwise | plackett_luce | train s (pw / pl) |")
    print("|---|---|---|---|---|---|")
    for f in per_fold:
        print(
            f"| {f['fold']} | {f['rankings']} | {f['pairs']} | {f['pairwise']:.3f} | {f['plackett_luce']:.3f} | "
            f"{f['pairwise_train_s']:.0f} / {f['plackett_luce_train_s']:.0f} |"
        )
    pooled = {loss: np.concatenate([np.array(v) for v in by_tree[loss].values()]) for loss in LOSSES}
    difference = {
        tree: np.subtract(by_tree["plackett_luce"][tree], by_tree["pairwise"][tree]) for tree in by_tree["pairwise"]
    }
    low, high = tree_bootstrap(difference)
    gap = float(pooled["plackett_luce"].mean() - pooled["pairwise"].mean())
    figures = {}
    for loss in LOSSES:
        values = [f[loss] for f in per_fold]
        print(
            f"{loss}: {pooled[loss].mean():.3f} on all {len(pooled[loss])} held-out pairs; "
            f"per seed mean {np.mean(values):.3f}, sd {spread(values):.3f}"
        )
        figures[f"{loss}_accuracy"] = round(float(pooled[loss].mean()), 4)
    print(f"plackett_luce - pairwise: {gap:+.3f} (95% interval, trees resampled: {low:+.3f} to {high:+.3f})")
    for loss in LOSSES:
        figures[f"{loss}_per_seed"] = [round(f[loss], 4) for f in per_fold]
        figures[f"{loss}_sd_across_seeds"] = round(spread([f[loss] for f in per_fold]), 4)
        figures[f"{loss}_train_seconds"] = round(sum(f[f"{loss}_train_s"] for f in per_fold), 1)
        figures[f"{loss}_truncated_share"] = round(per_fold[-1][f"{loss}_truncated_share"], 4)
    return {
        **figures,
        "difference": round(gap, 4),
        "difference_ci95_tree_bootstrap": [round(low, 4), round(high, 4)],
        "held_out_pairs": int(len(pooled["pairwise"])),
        "held_out_pairs_per_seed": [f["pairs"] for f in per_fold],
        "seeds": args.folds,
        "max_length": args.max_length,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "batch_size_pairs": args.batch_size,
        "batch_size_rankings": args.ranking_batch_size,
        "freeze_layers": args.freeze_layers,
        "load_avg": round(float(np.mean(loads)), 2),
        "load_avg_samples": [round(x, 2) for x in loads],
        "seconds": round(seconds, 1),
    }


if __name__ == "__main__":
    main()
