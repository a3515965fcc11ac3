"""Label efficiency of active learning on real human preferences: random vs uncertainty selection.

Takes a file in the layout of ../shared/data/hh-rlhf-harmless/pairs.jsonl.gz (gzipped JSON
Lines, whole "\\n\\nHuman: ...\\n\\nAssistant: ..." transcripts in `chosen` and `rejected`) and
lets its human labels play the raters. The pairs are split by opening human turn into a pool
and a held-out set. Each strategy starts from the same random batch of the pool (per seed),
then in rounds trains a reward model on the labels it has, scores the unlabelled pool and asks
for the next batch: at random, or by `reward.uncertainty.doubt` (optionally spread over
prompt clusters with `diverse_priorities`). Held-out accuracy is measured at each budget.

The reward model of the rounds is a proxy, so hundreds of rounds take minutes on 2 cores:
the offline default MiniLM encoder, frozen, embeds each conversation once (Plumb's encoding,
which keeps the end of long conversations; cached under PLUMB_HOME), and a Bradley-Terry
linear head is trained on the differences of the two sides' embeddings; a bootstrap ensemble
of such heads gives the spread of each margin. (256 tokens and C=1e-3 were chosen on a split
of the pool alone, never the held-out pairs.) Before its curves are trusted, the bench checks
at one budget that full fine-tuning of MiniLM (`plumb reward train`'s own code) on the random
set and on the uncertainty set ranks the two strategies as the proxy does; that check is most
of the bench's time.

Prints per-round progress to stderr, then the check, the learning-curve table and the
pre-label table; writes the learning curve as a PNG; prints LAST one JSON line.

    python bench/active_learning.py --data ../shared/data/hh-rlhf-harmless/pairs.jsonl.gz
"""

import argparse
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from loop.demo_assets import opening_turn, read_pairs  # noqa: E402  (hh-rlhf transcripts to contract pairs)
from reward import uncertainty  # noqa: E402

THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 0.95)


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the tables and the JSON line."""
    print(message, file=sys.stderr, flush=True)


# Data


def split_by_opening_turn(pairs: list[dict], held_out_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, held-out) indices of `pairs`: whole opening human turns on one side, about `held_out_share` held out."""
    keys = [opening_turn(pair) for pair in pairs]
    distinct = sorted(set(keys))
    rng = np.random.default_rng(seed)
    held = {distinct[i] for i in rng.permutation(len(distinct))[: round(held_out_share * len(distinct))]}
    is_held = np.array([key in held for key in keys])
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


# Frozen-encoder features


def file_digest(path: Path) -> str:
    """A short hash of a file's bytes: the feature cache's key, with the encoding settings."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def embed(model, tokenizer, conversations: list[list[dict]], *, max_length: int, desc: str, batch_size: int = 32):
    """Mean-pooled last hidden states of MiniLM (its sentence embedding), L2-normalised, shape (n, hidden)."""
    import torch
    from tqdm.auto import tqdm

    from reward.encoding import encode_conversation

    encoded = [encode_conversation(tokenizer, conversation, max_length)[0] for conversation in conversations]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))  # similar lengths share a batch
    out = np.zeros((len(encoded), model.config.hidden_size), np.float32)
    encoder = model.base_model
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc=f"embed {desc}", unit="batch", file=sys.stderr):
            members = order[start : start + batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in members]}, return_tensors="pt")
            hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            out[members] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out


def last_user_turn(pair: dict) -> list[dict]:
    """The pair's last human turn as a one-message conversation: what the prompt asks, for clustering prompts."""
    return [next(m for m in reversed(pair["prompt"]) if m["role"] == "user")]


def features(pairs: list[dict], data: Path, *, max_length: int, cache_dir: Path) -> dict[str, np.ndarray]:
    """Embeddings of prompt+chosen, prompt+rejected and each pair's last human turn, computed once and cached."""
    cache = cache_dir / f"minilm-{file_digest(data)}-{max_length}.npz"
    if cache.is_file():
        log(f"features: cached in {cache}")
        return dict(np.load(cache))
    from plumb.models import load_reward_backbone

    model, tokenizer = load_reward_backbone("default")
    model.eval()
    started = time.time()
    result = {
        side: embed(model, tokenizer, [p["prompt"] + p[side] for p in pairs], max_length=max_length, desc=side)
        for side in ("chosen", "rejected")
    }
    # the question alone is enough to group prompts by topic, and 64 tokens of it cost little
    result["prompt"] = embed(model, tokenizer, [last_user_turn(p) for p in pairs], max_length=64, desc="prompt")
    log(f"features: {len(pairs)} pairs embedded in {time.time() - started:.0f} s, cached in {cache}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **result)
    return result


# The proxy reward model: a Bradley-Terry linear head on frozen features, a bootstrap ensemble of them


@dataclass
class Setup:
    """What every run shares: standardised feature differences (chosen - rejected), the split and the settings."""

    diff: np.ndarray
    prompts: np.ndarray
    pool: np.ndarray
    held: np.ndarray
    budgets: list[int]
    members: int
    c: float


def feature_differences(feats: dict[str, np.ndarray], pool: np.ndarray) -> np.ndarray:
    """chosen - rejected embeddings, each dimension divided by its spread over the pool's responses (no labels used)."""
    scale = np.concatenate([feats["chosen"][pool], feats["rejected"][pool]]).std(axis=0)
    return (feats["chosen"] - feats["rejected"]) / np.maximum(scale, 1e-6)  # MiniLM has a few constant dimensions


def fit_head(diff: np.ndarray, c: float) -> np.ndarray:
    """Weights w of a reward r(x) = w . phi(x) fitted by Bradley-Terry on chosen-minus-rejected rows."""
    from sklearn.linear_model import LogisticRegression

    # each pair both ways round, no intercept: the margin of a swapped pair is exactly minus the margin
    rows = np.concatenate([diff, -diff])
    labels = np.r_[np.ones(len(diff)), np.zeros(len(diff))]
    return LogisticRegression(C=c, fit_intercept=False, max_iter=2000).fit(rows, labels).coef_[0]


def fit_ensemble(setup: Setup, labelled: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(members, dim) heads, each on a bootstrap resample of the labelled pairs: their spread is the model's doubt."""
    draws = [rng.choice(labelled, len(labelled), replace=True) for _ in range(setup.members)]
    return np.stack([fit_head(setup.diff[draw], setup.c) for draw in draws])


def held_out_accuracy(heads: np.ndarray, setup: Setup) -> float:
    """Share of held-out pairs whose human choice has the higher mean reward (a tie counts half)."""
    from reward.metrics import pair_correct

    margin = (heads @ setup.diff[setup.held].T).mean(axis=0)
    return float(pair_correct(margin, np.zeros_like(margin)).mean())


# Strategies


@dataclass(frozen=True)
class Strategy:
    """How the next batch is chosen: at random or by doubt, maybe over prompt clusters, in rounds of `batch` labels."""

    name: str
    by_doubt: bool
    clusters: int = 0
    batch: int | None = None  # None: a round ends at each budget (batches double with the budgets)


def round_ends(budgets: list[int], batch: int | None) -> list[int]:
    """Label counts at which a round ends: every budget, and every `batch` labels in between."""
    if batch is None:
        return list(budgets)
    return sorted(set(budgets) | set(range(budgets[0], budgets[-1], batch)))


def next_batch(strategy: Strategy, setup: Setup, heads, unlabelled: np.ndarray, size: int, seed: int) -> np.ndarray:
    """The `size` unlabelled pool pairs the strategy asks raters about next."""
    margins = heads @ setup.diff[unlabelled].T
    doubts = uncertainty.doubt(margins)
    embeddings = setup.prompts[unlabelled] if strategy.clusters > 1 else None
    priorities = uncertainty.diverse_priorities(doubts, embeddings, clusters=strategy.clusters, seed=seed)
    return unlabelled[np.argsort(-priorities, kind="stable")[:size]]


@dataclass
class Run:
    """One strategy, one seed: held-out accuracy at each budget, the labelled pairs there, the last heads."""

    accuracy: dict[int, float] = field(default_factory=dict)
    labelled: dict[int, np.ndarray] = field(default_factory=dict)
    heads: np.ndarray | None = None


def run_strategy(strategy: Strategy, setup: Setup, seed: int) -> Run:
    """Label the pool round by round from the seed's random first batch; measure at every budget."""
    order = np.random.default_rng(seed).permutation(setup.pool)  # every strategy starts from this seed's first batch
    rng = np.random.default_rng([seed, 1])
    labelled = order[: setup.budgets[0]]
    run = Run()
    ends = round_ends(setup.budgets, strategy.batch)
    for count, following in zip(ends, ends[1:] + [None]):
        heads = fit_ensemble(setup, labelled, rng)
        if count in setup.budgets:
            run.accuracy[count], run.labelled[count] = held_out_accuracy(heads, setup), labelled.copy()
            log(f"  {strategy.name:<40} seed {seed}  {count:>5} labels  held-out {run.accuracy[count]:.3f}")
        if following is None:
            run.heads = heads
            break
        if strategy.by_doubt:
            unlabelled = np.setdiff1d(setup.pool, labelled)
            labelled = np.concatenate(
                [labelled, next_batch(strategy, setup, heads, unlabelled, following - count, seed)]
            )
        else:
            labelled = order[:following]
    return run


# Reading the curves


def labels_to_reach(budgets: list[int], curve: list[float], target: float) -> float | None:
    """Labels at which a curve first reaches `target`, interpolated linearly between budgets; None if it never does."""
    for i, accuracy in enumerate(curve):
        if accuracy >= target:
            if i == 0:
                return float(budgets[0])
            low, high = curve[i - 1], accuracy
            return budgets[i - 1] + (target - low) / (high - low) * (budgets[i] - budgets[i - 1])
    return None


def curve_summary(runs: list[Run], budgets: list[int]) -> dict[int, dict]:
    """Per budget: mean, standard deviation (ddof=1), min and max of held-out accuracy across seeds."""
    summary = {}
    for budget in budgets:
        values = np.array([run.accuracy[budget] for run in runs])
        summary[budget] = {
            "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "min": float(values.min()),
            "max": float(values.max()),
        }
    return summary


def label_savings(random_runs: list[Run], runs: list[Run], budgets: list[int]) -> dict:
    """Labels the strategy needs to reach random's accuracy at the largest budget: on the mean curves and per seed."""
    largest = budgets[-1]
    target = float(np.mean([run.accuracy[largest] for run in random_runs]))
    mean_curve = [float(np.mean([run.accuracy[b] for run in runs])) for b in budgets]
    needed = labels_to_reach(budgets, mean_curve, target)
    per_seed = []
    for random_run, run in zip(random_runs, runs):
        seed_needed = labels_to_reach(budgets, [run.accuracy[b] for b in budgets], random_run.accuracy[largest])
        per_seed.append(round(largest / seed_needed, 3) if seed_needed else None)
    reached = [ratio for ratio in per_seed if ratio is not None]
    gains = [
        float(np.mean([run.accuracy[b] - random_run.accuracy[b] for b in budgets[1:]]))
        for random_run, run in zip(random_runs, runs)
    ]
    return {
        "target_accuracy": round(target, 4),
        "labels_random": largest,
        "labels_needed": round(needed, 1) if needed is not None else None,
        "ratio": round(largest / needed, 3) if needed is not None else None,
        "reached": needed is not None,
        "reached_at_first_budget": needed == budgets[0],  # then the ratio is a lower bound
        "per_seed_ratios": per_seed,
        "seeds_reaching_target": len(reached),
        "per_seed_ratio_median": float(np.median(reached)) if reached else None,
        "per_seed_ratio_range": [min(reached), max(reached)] if reached else None,
        # the whole curve, paired by seed (the first budget is the shared random start): less noisy than one crossing
        "mean_gain_over_budgets": round(float(np.mean(gains)), 4),
        "mean_gain_sd_over_seeds": round(float(np.std(gains, ddof=1)), 4) if len(gains) > 1 else None,
        "seeds_with_positive_gain": int(sum(gain > 0 for gain in gains)),
    }


# Pre-labels


def prelabel_table(margins: np.ndarray) -> list[dict]:
    """Per confidence threshold: share of pairs auto-labelled at or above it, and how often that label is the human's.

    `margins` are chosen - rejected, (models, pairs): an auto-label is right when it prefers the human's choice.
    """
    first_preferred, confidence = uncertainty.prelabel(margins)
    rows = []
    for threshold in THRESHOLDS:
        kept = confidence >= threshold
        rows.append(
            {
                "threshold": threshold,
                "share": float(kept.mean()),
                "pairs": int(kept.sum()),
                "accuracy": float(first_preferred[kept].mean()) if kept.any() else None,
            }
        )
    return rows


def mean_prelabel_table(tables: list[list[dict]]) -> list[dict]:
    """Several seeds' pre-label tables as one: mean share, and accuracy over all auto-labelled pairs pooled."""
    rows = []
    for per_seed in zip(*tables):
        pairs = sum(row["pairs"] for row in per_seed)
        right = sum(row["accuracy"] * row["pairs"] for row in per_seed if row["pairs"])
        rows.append(
            {
                "threshold": per_seed[0]["threshold"],
                "share": round(float(np.mean([row["share"] for row in per_seed])), 4),
                "share_range": [
                    round(min(r["share"] for r in per_seed), 4),
                    round(max(r["share"] for r in per_seed), 4),
                ],
                "accuracy": round(right / pairs, 4) if pairs else None,
                "auto_labelled_pairs": pairs,
            }
        )
    return rows


# The check: does full fine-tuning rank the strategies as the proxy does?


def write_pairs(pairs: list[dict], indices: np.ndarray, path: Path) -> Path:
    """The chosen pairs as contract JSONL, for `plumb reward train`."""
    with path.open("w", encoding="utf-8") as out:
        for i in indices:
            out.write(json.dumps(pairs[i], ensure_ascii=False) + "\n")
    return path


def fine_tune_flags(args, train_file: Path, output_dir: Path, seed: int) -> list[str]:
    """`plumb reward train` flags: the default MiniLM, fixed epochs, no dev split (every selected label trains)."""
    settings = {
        "model_name_or_path": "default",
        "dataset_name": train_file,
        "test_size": 0,
        "output_dir": output_dir,
        "max_length": args.max_length,
        "num_train_epochs": args.check_epochs,
        "learning_rate": 1e-4,
        "per_device_train_batch_size": 16,
        "train_sampling_strategy": "group_by_length",
        "gradient_checkpointing": "false",
        "center_rewards_coefficient": 0.01,
        "warmup_steps": 10,
        "seed": seed,
        "freeze_layers": args.freeze_layers,
        "logging_steps": 10,
        "save_strategy": "no",
        "report_to": "none",
    }
    return [str(token) for key, value in settings.items() for token in (f"--{key}", value)]


def fine_tune_margins(args, pairs: list[dict], train: np.ndarray, held: np.ndarray, work: Path, name: str) -> dict:
    """Fine-tune MiniLM on the `train` pairs with Plumb's reward stage; its held-out margins and training time."""
    from plumb.config import parse_config
    from reward import train as reward_train
    from reward.evaluate import score_pairs
    from reward.score import load_reward_model

    output_dir = work / name
    started = time.time()
    flags = fine_tune_flags(args, write_pairs(pairs, train, work / f"{name}.jsonl"), output_dir, args.check_seed)
    with contextlib.redirect_stdout(sys.stderr):  # the trainer prints its logs: keep stdout for the tables and JSON
        reward_train.main(*parse_config(reward_train.config_types(), flags))
    seconds = time.time() - started
    held_pairs = {key: [pairs[i][key] for i in held] for key in ("prompt", "chosen", "rejected")}
    chosen, rejected = score_pairs([load_reward_model(str(output_dir))], held_pairs, max_length=args.max_length)
    return {"margins": chosen - rejected, "train_seconds": seconds}


def paired_difference(first: np.ndarray, second: np.ndarray, *, samples: int = 2000, seed: int = 0) -> dict:
    """Mean of per-pair correctness `first - second` with a paired percentile bootstrap 95% interval."""
    difference = first - second
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, len(difference), size=(samples, len(difference)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return {"mean": round(float(difference.mean()), 4), "ci95": [round(float(low), 4), round(float(high), 4)]}


def proxy_check(args, pairs, setup: Setup, random_run: Run, doubt_run: Run, work: Path) -> dict:
    """Full fine-tuning on the random and the uncertainty set of one seed at one budget, against the proxy's verdict."""
    from plumb.stats import bootstrap_ci
    from reward.metrics import pair_correct

    budget = args.check_budget
    log(f"check: fine-tuning MiniLM on the random and the uncertainty set of {budget} labels (seed {args.check_seed})")
    results, correct = {}, {}
    for name, run in (("random", random_run), ("uncertainty", doubt_run)):
        tuned = fine_tune_margins(args, pairs, run.labelled[budget], setup.held, work, name)
        correct[name] = pair_correct(tuned["margins"], np.zeros_like(tuned["margins"]))
        results[name] = {
            "full_accuracy": round(float(correct[name].mean()), 4),
            "full_accuracy_ci95": [round(x, 4) for x in bootstrap_ci(correct[name], seed=args.check_seed)],
            "proxy_accuracy": round(run.accuracy[budget], 4),
            "train_seconds": round(tuned["train_seconds"], 1),
            "prelabel": prelabel_table(tuned["margins"][None, :]),
        }
        log(f"check: {name}: full fine-tuning {results[name]['full_accuracy']:.3f}, proxy {run.accuracy[budget]:.3f}")
    full_gap = results["uncertainty"]["full_accuracy"] - results["random"]["full_accuracy"]
    proxy_gap = results["uncertainty"]["proxy_accuracy"] - results["random"]["proxy_accuracy"]
    low, high = paired_difference(correct["uncertainty"], correct["random"])["ci95"]
    return {
        "budget": budget,
        "seed": args.check_seed,
        "epochs": args.check_epochs,
        "freeze_layers": args.freeze_layers,
        **results,
        "full_gap": round(full_gap, 4),
        "full_gap_paired_ci95": [low, high],
        # same sign alone can be luck: say whether full training tells the two sets apart at all
        "full_gap_significant": bool(low > 0 or high < 0),
        "proxy_gap": round(proxy_gap, 4),
        "same_ranking": bool(np.sign(full_gap) == np.sign(proxy_gap)),
    }


# Output


def format_curves(curves: dict[str, dict[int, dict]], budgets: list[int], seeds: int) -> str:
    """Held-out accuracy per strategy and budget: mean ± standard deviation across seeds."""
    width = max(len(name) for name in curves) + 2
    lines = [
        f"Held-out accuracy (mean ± SD over {seeds} seeds) by labels",
        "strategy".ljust(width) + "".join(f"{b:>14}" for b in budgets),
    ]
    for name, curve in curves.items():
        cells = "".join(f"{curve[b]['mean']:>8.3f} ±{curve[b]['sd']:.3f}" for b in budgets)
        lines.append(name.ljust(width) + cells)
    return "\n".join(lines)


def format_savings(savings: dict[str, dict]) -> str:
    """Labels each doubt strategy needs to match random selection at the largest budget."""
    lines = [
        "Labels each strategy needs to reach random's mean accuracy at the largest budget (target), and its mean",
        "accuracy gain over random across the budgets after the shared first one (paired by seed, mean ± SD)",
        f"{'strategy':<40}{'target':>8}{'labels':>8}{'random':>8}{'ratio':>7}{'gain':>16}  per-seed ratios",
    ]
    for name, row in savings.items():
        labels = f"{row['labels_needed']:.0f}" if row["reached"] else "never"
        ratio = f"{row['ratio']:.2f}" if row["ratio"] else "-"
        gain = f"{row['mean_gain_over_budgets']:+.4f} ±{row['mean_gain_sd_over_seeds'] or 0:.4f}"
        lines.append(
            f"{name:<40}{row['target_accuracy']:>8.3f}{labels:>8}{row['labels_random']:>8}{ratio:>7}{gain:>16}  "
            f"{row['per_seed_ratios']}"
        )
    return "\n".join(lines)


def format_prelabel(title: str, rows: list[dict]) -> str:
    """The pre-label rule: per threshold, the share auto-labelled and those labels' accuracy."""
    lines = [title, f"{'confidence >=':>14}{'share':>10}{'accuracy':>10}{'pairs':>8}"]
    for row in rows:
        accuracy = f"{row['accuracy']:.3f}" if row["accuracy"] is not None else "-"
        pairs = row.get("auto_labelled_pairs", row.get("pairs"))
        lines.append(f"{row['threshold']:>14}{row['share']:>10.3f}{accuracy:>10}{pairs:>8}")
    return "\n".join(lines)


def format_check(check: dict) -> str:
    """The proxy check: full fine-tuning and proxy accuracy of the two sets, and whether they rank them alike."""
    lines = [f"Proxy check at {check['budget']} labels (seed {check['seed']}): full fine-tuning vs the proxy"]
    for name in ("random", "uncertainty"):
        row = check[name]
        low, high = row["full_accuracy_ci95"]
        lines.append(
            f"  {name:<12} full {row['full_accuracy']:.3f} ({low:.3f}-{high:.3f}, {row['train_seconds']:.0f} s)"
            f"   proxy {row['proxy_accuracy']:.3f}"
        )
    low, high = check["full_gap_paired_ci95"]
    lines.append(
        f"  uncertainty - random: full {check['full_gap']:+.3f} (paired 95% CI {low:+.3f} to {high:+.3f}), "
        f"proxy {check['proxy_gap']:+.3f}; same ranking: {check['same_ranking']}"
    )
    if not check["full_gap_significant"]:
        lines.append(
            "  (the full-training gap's interval includes 0: at this size the check cannot tell the sets apart)"
        )
    return "\n".join(lines)


def plot(curves: dict[str, dict[int, dict]], budgets: list[int], savings: dict, full_pool: float, path: Path, title):
    """Learning curves (mean, range over seeds shaded for random and uncertainty) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for name, curve in curves.items():
        means = [curve[b]["mean"] for b in budgets]
        main_line = name in ("random", "uncertainty")
        (line,) = axes.plot(
            budgets, means, marker="o", lw=2 if main_line else 1, ls="-" if main_line else "--", label=name
        )
        if main_line:
            low, high = [curve[b]["min"] for b in budgets], [curve[b]["max"] for b in budgets]
            axes.fill_between(budgets, low, high, color=line.get_color(), alpha=0.15)
    target = savings["uncertainty"]["target_accuracy"]
    axes.axhline(target, color="grey", ls=":", lw=1, label=f"random at {budgets[-1]} labels ({target:.3f})")
    axes.axhline(full_pool, color="black", ls=":", lw=1, label=f"whole pool ({full_pool:.3f})")
    axes.set_xscale("log", base=2)
    axes.set_xticks(budgets, [str(b) for b in budgets])
    axes.set_xlabel("human labels (pairs)")
    axes.set_ylabel("held-out accuracy")
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


# Main


def parse_arguments(argv=None) -> argparse.Namespace:
    """The bench's flags."""
    from plumb.paths import data_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="hh-rlhf-layout pairs (.jsonl.gz)")
    parser.add_argument(
        "--plot", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "active_learning.png"
    )
    parser.add_argument("--budgets", default="50,100,200,400,800,1200", help="label budgets, ascending")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--held-out", type=float, default=0.25, help="share of opening turns held out")
    parser.add_argument("--members", type=int, default=5, help="bootstrap heads in the proxy's ensemble")
    parser.add_argument("--c", type=float, default=1e-3, help="inverse L2 strength of the heads (chosen on the pool)")
    parser.add_argument("--clusters", type=int, default=10, help="prompt clusters of the +diversity strategies")
    parser.add_argument("--small-batch", type=int, default=50, help="labels per round of the 'rounds of' strategies")
    parser.add_argument("--max-length", type=int, default=256, help="tokens kept per conversation (its end)")
    parser.add_argument("--cache-dir", type=Path, default=data_dir() / "bench-features")
    parser.add_argument("--check-budget", type=int, default=400, help="labels of the full fine-tuning check")
    parser.add_argument("--check-epochs", type=float, default=2.0)
    parser.add_argument("--check-seed", type=int, default=0, help="which seed's sets the check fine-tunes on")
    parser.add_argument("--freeze-layers", type=int, default=3, help="frozen lowest MiniLM blocks in the check")
    parser.add_argument("--skip-check", action="store_true", help="no full fine-tuning (the proxy is then unchecked)")
    args = parser.parse_args(argv)
    args.budgets = [int(b) for b in args.budgets.split(",")]
    if args.budgets != sorted(set(args.budgets)) or args.budgets[0] < 2:
        parser.error("--budgets must be ascending and at least 2")
    if not args.skip_check and (args.check_budget not in args.budgets or args.check_seed not in range(args.seeds)):
        parser.error("--check-budget must be one of --budgets and --check-seed below --seeds")
    return args


def strategies(args) -> list[Strategy]:
    """Random selection, the main uncertainty strategy, and its variants (diversity, smaller rounds)."""
    small = args.small_batch
    return [
        Strategy("random", by_doubt=False),
        Strategy("uncertainty", by_doubt=True),  # the headline strategy, fixed before any run
        Strategy("uncertainty+diversity", by_doubt=True, clusters=args.clusters),
        Strategy(f"uncertainty, rounds of {small}", by_doubt=True, batch=small),
        Strategy(f"uncertainty+diversity, rounds of {small}", by_doubt=True, clusters=args.clusters, batch=small),
    ]


def build_setup(args, pairs: list[dict]) -> Setup:
    """Split, embed (or read the cache) and standardise: what every run shares."""
    pool, held = split_by_opening_turn(pairs, args.held_out, seed=0)
    if args.budgets[-1] >= len(pool):
        raise SystemExit(f"the largest budget {args.budgets[-1]} must be below the pool's {len(pool)} pairs")
    feats = features(pairs, args.data, max_length=args.max_length, cache_dir=args.cache_dir)
    return Setup(
        diff=feature_differences(feats, pool),
        prompts=feats["prompt"],
        pool=pool,
        held=held,
        budgets=args.budgets,
        members=args.members,
        c=args.c,
    )


def main(argv=None) -> dict:
    """Run every strategy and seed, check the proxy, print the tables and the JSON line; returns the figures."""
    from plumb.cli import configure_logging

    configure_logging()
    started, load_start = time.time(), os.getloadavg()
    args = parse_arguments(argv)
    pairs, empty = read_pairs(args.data)
    log(f"data: {len(pairs)} pairs ({empty} left out for an empty reply)")
    setup = build_setup(args, pairs)
    feature_seconds = time.time() - started
    log(f"split: pool {len(setup.pool)}, held out {len(setup.held)} pairs")

    from threadpoolctl import threadpool_limits

    # the proxy's matrices are small: on shared cores, OpenMP threads spin-wait for each other (KMeans ran 15x slower)
    with threadpool_limits(limits=1):
        runs = {s.name: [run_strategy(s, setup, seed) for seed in range(args.seeds)] for s in strategies(args)}
    curves = {name: curve_summary(group, args.budgets) for name, group in runs.items()}
    savings = {
        name: label_savings(runs["random"], group, args.budgets) for name, group in runs.items() if name != "random"
    }
    full_pool = held_out_accuracy(fit_ensemble(setup, setup.pool, np.random.default_rng(0)), setup)
    prelabels = mean_prelabel_table([prelabel_table(run.heads @ setup.diff[setup.held].T) for run in runs["random"]])
    check_started = time.time()
    check = None
    if not args.skip_check:
        work = Path(tempfile.mkdtemp(prefix="plumb-active-learning-"))
        check = proxy_check(
            args, pairs, setup, runs["random"][args.check_seed], runs["uncertainty"][args.check_seed], work
        )
    check_seconds = time.time() - check_started
    source = f"{args.data.parent.name}/{args.data.name}"
    title = f"Active learning on {source}\nheld-out accuracy, mean of {args.seeds} seeds (shaded: their range)"
    plot(curves, args.budgets, savings, full_pool, args.plot, title)

    if check:
        print(format_check(check), end="\n\n")
    print(format_curves(curves, args.budgets, args.seeds), end="\n\n")
    print(f"whole pool ({len(setup.pool)} labels): {full_pool:.3f}\n")
    print(format_savings(savings), end="\n\n")
    print(
        format_prelabel(
            f"Pre-labels on the {len(setup.held)} held-out pairs: proxy trained on {args.budgets[-1]} "
            f"random labels (mean over {args.seeds} seeds)",
            prelabels,
        ),
        end="\n\n",
    )
    if check:
        print(
            format_prelabel(
                f"Pre-labels: full fine-tuning on {args.check_budget} random labels (seed {args.check_seed})",
                check["random"]["prelabel"],
            ),
            end="\n\n",
        )
    print(f"plot: {args.plot}")
    headline = savings["uncertainty"]
    figures = {
        "labels_random": headline["labels_random"],
        "labels_uncertainty": headline["labels_needed"],
        "ratio": headline["ratio"],
        "target_accuracy": headline["target_accuracy"],
        "uncertainty_reached_target": headline["reached"],
        "reached_at_first_budget": headline["reached_at_first_budget"],
        "per_seed_ratios": headline["per_seed_ratios"],
        "seeds_reaching_target": headline["seeds_reaching_target"],
        "per_seed_ratio_median": headline["per_seed_ratio_median"],
        "per_seed_ratio_range": headline["per_seed_ratio_range"],
        "mean_gain_over_budgets": headline["mean_gain_over_budgets"],
        "mean_gain_sd_over_seeds": headline["mean_gain_sd_over_seeds"],
        "seeds_with_positive_gain": headline["seeds_with_positive_gain"],
        "variants": {name: row for name, row in savings.items() if name != "uncertainty"},
        "curves": {
            name: {str(b): {k: round(v, 4) for k, v in cell.items()} for b, cell in c.items()}
            for name, c in curves.items()
        },
        "whole_pool_accuracy": round(full_pool, 4),
        "proxy_check": check,
        "prelabel": {
            "model": f"proxy, {args.budgets[-1]} random labels, mean of {args.seeds} seeds",
            "rows": prelabels,
        },
        "pool_pairs": len(setup.pool),
        "held_out_pairs": len(setup.held),
        "budgets": args.budgets,
        "seeds": args.seeds,
        "ensemble_members": args.members,
        "head_c": args.c,
        "clusters": args.clusters,
        "small_batch": args.small_batch,
        "max_length": args.max_length,
        "plot": str(args.plot),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "feature_seconds": round(feature_seconds, 1),
        "check_seconds": round(check_seconds, 1),
        "wall_seconds": round(time.time() - started, 1),
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
