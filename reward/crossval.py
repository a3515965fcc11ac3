"""K-fold cross-validation of a reward-model training recipe, by prompt.

`plumb reward cv` takes the keys of `plumb reward train` (the same YAML) and `--kfold K`. The training
split's pairs (or rankings) are dealt into K folds so that no prompt is in two: rows are grouped by
`plumb.data.prompt_key`, the normalised prompt the held-out split of `plumb reward train` groups by,
and dealt by scikit-learn's `GroupKFold` (folds about equal in rows, ties between prompts broken by
the seed). Each fold is scored by a model trained on the other K-1 with `plumb reward train`'s own
code; the dataset's test split is never touched. With `early_stopping_patience`, `test_size` of the
training folds (never the held-out fold) is the dev set that picks the best epoch; otherwise each
model trains on all K-1 folds.

Writes OUTPUT_DIR/cv-Kfold/: cv_report.json (per fold and summary), cv_predictions.jsonl (each held-out
pair's rewards), fold-N/eval_report.json and the resolved config; prints the table and one summary line.
`plumb reward eval --kfold K` runs the same.

    plumb reward cv --config configs/reward/cv.yaml
    plumb reward eval --kfold 5 --config configs/reward/demo.yaml
"""

import copy
import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from plumb.config import ConfigError, parse_config, save_resolved_config
from plumb.data import DataError, load_contract, prompt_key, ranking_to_pairs, to_conversational
from reward import metrics as m
from reward.config import CrossValidationArguments, RewardScriptArguments
from reward.evaluate import evaluate_scores, score_pairs

logger = logging.getLogger(__name__)

REPORT_FILE = "cv_report.json"
PREDICTIONS_FILE = "cv_predictions.jsonl"
FOLD_KEYS = ("pairs", "accuracy", "accuracy_ci95", "ece", "mean_margin", "length_baseline_accuracy")


def config_types() -> tuple:
    """The dataclasses a `plumb reward cv` config fills: the folds, then those of `plumb reward train`."""
    from trl import ModelConfig, RewardConfig

    return CrossValidationArguments, RewardScriptArguments, RewardConfig, ModelConfig


def cli(argv: list[str], *, prog: str) -> int:
    """Parse `--config` and flags, cross-validate, print the table and the summary line."""
    report = main(*parse_config(config_types(), argv, prog=prog))
    print(format_table(report))
    print(summary_line(report))
    return 0


def prompt_folds(keys: list[str], kfold: int, *, seed: int = 0, source: str = "data") -> np.ndarray:
    """The fold (0..K-1) of each row, from its prompt key: no key in two folds, folds about equal in rows."""
    from sklearn.model_selection import GroupKFold

    groups = list(dict.fromkeys(keys))
    if len(groups) < kfold:
        raise DataError(
            f"{source}: {len(keys)} rows have {len(groups)} distinct prompts, fewer than kfold={kfold}; "
            "a prompt cannot be split between folds, so use fewer folds or more prompts"
        )
    # GroupKFold deals the largest groups first, each to the lightest fold, equal sizes in group-label order:
    # seeded labels make that order (and so the folds) a function of the seed, not of the prompts' text.
    labels = dict(zip(groups, np.random.default_rng(seed).permutation(len(groups))))
    row_labels = np.array([labels[key] for key in keys])
    folds = np.empty(len(keys), dtype=int)
    splits = GroupKFold(n_splits=kfold).split(np.zeros((len(keys), 1)), groups=row_labels)
    for fold, (_, test) in enumerate(splits):
        folds[test] = fold
    return folds


def main(cv_args: CrossValidationArguments, script_args: RewardScriptArguments, training_args, model_args) -> dict:
    """Train and score every fold; write and return the report (per fold, mean, sd, intervals, pooled)."""
    if script_args.early_stopping_patience and not script_args.test_size:
        raise ConfigError(
            "early_stopping_patience in cross-validation needs test_size > 0: a dev share of the training folds "
            "picks the best epoch, since the held-out fold is kept for the figures alone"
        )
    source = f"{script_args.dataset_name} [{script_args.dataset_train_split}]"
    rows = load_contract(script_args.dataset_name, ("pairwise", "ranking"), script_args.dataset_train_split)
    keys = [prompt_key(row) for row in rows]
    folds = prompt_folds(keys, cv_args.kfold, seed=training_args.seed, source=source)
    output_dir = Path(training_args.output_dir) / f"cv-{cv_args.kfold}fold"
    logger.info(
        "Cross-validating on %s: %d rows, %d prompts, %d folds by prompt (the test split, if any, is not used)",
        source,
        len(rows),
        len(set(keys)),
        cv_args.kfold,
    )
    fold_reports, predictions = [], []
    for fold in range(cv_args.kfold):
        held_out = np.flatnonzero(folds == fold)
        report, fold_predictions = run_fold(
            fold,
            rows,
            held_out,
            np.flatnonzero(folds != fold),
            (cv_args, script_args, training_args, model_args),
            output_dir / f"fold-{fold}",
        )
        report["prompts"] = len({keys[i] for i in held_out})
        fold_reports.append(report)
        predictions += fold_predictions
        logger.info("Fold %d: accuracy %.3f on %d held-out pairs", fold, report["accuracy"], report["pairs"])
    summary = summarise(
        fold_reports, predictions, bootstrap_samples=script_args.bootstrap_samples, seed=training_args.seed
    )
    summary.update(
        dataset=source,
        model=model_args.model_name_or_path or "default",
        rows=len(rows),
        prompts=len(set(keys)),
        seed=training_args.seed,
        output_dir=str(output_dir),
    )
    (output_dir / REPORT_FILE).write_text(json.dumps(summary, indent=2))
    with (output_dir / PREDICTIONS_FILE).open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(prediction) + "\n" for prediction in predictions)
    save_resolved_config(output_dir, cv_args, script_args, training_args, model_args)
    return summary


def run_fold(fold: int, rows, held_out, training, configs, fold_dir: Path) -> tuple[dict, list[dict]]:
    """Train on the rows `training` (indices), score the rows `held_out`; the fold's report and per-pair rewards."""
    from reward import train
    from reward.score import load_reward_model

    cv_args, script_args, training_args, model_args = configs
    # The training folds go through `plumb reward train` whole, as a dataset folder with only a train split.
    data_dir = fold_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "train.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(rows[int(i)], ensure_ascii=False, default=str) + "\n" for i in training)
    fold_script = dataclasses.replace(
        script_args,
        dataset_name=str(data_dir),
        dataset_train_split="train",
        dataset_test_split=None,
        test_size=script_args.test_size if script_args.early_stopping_patience else 0.0,
    )
    # train.main adjusts its arguments (evaluation strategy, LoRA task type): every fold starts from the recipe.
    fold_training = copy.deepcopy(training_args)
    fold_training.output_dir = str(fold_dir / "model")
    metrics = train.main(fold_script, fold_training, copy.deepcopy(model_args))

    pairs, pair_rows = held_out_pairs(rows.select(held_out), held_out, fold=fold)
    reward_model = load_reward_model(fold_training.output_dir)
    chosen, rejected = score_pairs(
        [reward_model],
        pairs,
        max_length=training_args.max_length,
        batch_size=training_args.per_device_eval_batch_size,
    )
    report = evaluate_scores(
        pairs, chosen, rejected, bootstrap_samples=script_args.bootstrap_samples, seed=training_args.seed
    )
    (fold_dir / "eval_report.json").write_text(json.dumps(report, indent=2))
    if not cv_args.keep_fold_models:
        del reward_model
        shutil.rmtree(fold_training.output_dir, ignore_errors=True)
    correct = m.pair_correct(chosen, rejected)
    predictions = [
        {"row": int(row), "fold": fold, "chosen_reward": float(c), "rejected_reward": float(r), "correct": float(k)}
        for row, c, r, k in zip(pair_rows, chosen, rejected, correct)
    ]
    fold_report = {"fold": fold, **{key: report[key] for key in FOLD_KEYS}, "train_rows": len(training)}
    fold_report.update({key: metrics[key] for key in ("train_loss", "train_runtime_s") if key in metrics})
    return fold_report, predictions


def held_out_pairs(rows, indices, *, fold: int):
    """(the held-out rows as conversational pairs, each pair's row index in the whole split); rankings expanded."""
    if "completions" not in rows.column_names:
        return to_conversational(rows), [int(i) for i in indices]
    pairs = ranking_to_pairs(rows)
    if not len(pairs):
        raise DataError(f"fold {fold}: its held-out rankings are all ties, so they give no pairs; use fewer folds")
    return to_conversational(pairs), [int(indices[meta["ranking_row"]]) for meta in pairs["meta"]]


def summarise(folds: list[dict], predictions: list[dict], *, bootstrap_samples: int = 1000, seed: int = 0) -> dict:
    """Mean, sd and t-interval of the per-fold accuracies (and ECE), and the accuracy pooled over every pair."""
    accuracies = [fold["accuracy"] for fold in folds]
    eces = [fold["ece"] for fold in folds]
    correct = np.array([prediction["correct"] for prediction in predictions])
    return {
        "kfold": len(folds),
        "pairs": int(correct.size),
        "accuracy_mean": float(np.mean(accuracies)),
        "accuracy_sd": m.sample_sd(accuracies),
        "accuracy_t_interval95": list(m.t_interval(accuracies)),
        "accuracy_pooled": float(correct.mean()),
        "accuracy_pooled_ci95": list(m.bootstrap_ci(correct, samples=bootstrap_samples, seed=seed)),
        "ece_mean": float(np.mean(eces)),
        "ece_sd": m.sample_sd(eces),
        "folds": folds,
    }


def format_table(report: dict) -> str:
    """Per fold: held-out pairs and prompts, training rows, accuracy (95% CI), ECE; then the mean and the pool."""
    lines = [
        f"{report['kfold']}-fold cross-validation by prompt of {report['model']} on {report['dataset']}: "
        f"{report['pairs']} pairs, {report['prompts']} prompts",
        f"  {'fold':>4}  {'pairs':>6}  {'prompts':>7}  {'train rows':>10}  {'accuracy':>8}  {'95% CI':<11}  {'ECE':>5}",
    ]
    for fold in report["folds"]:
        low, high = fold["accuracy_ci95"]
        lines.append(
            f"  {fold['fold']:>4}  {fold['pairs']:>6}  {fold['prompts']:>7}  {fold['train_rows']:>10}  "
            f"{fold['accuracy']:>8.3f}  {low:.3f}-{high:.3f}  {fold['ece']:>5.3f}"
        )
    low, high = report["accuracy_t_interval95"]
    pooled_low, pooled_high = report["accuracy_pooled_ci95"]
    lines += [
        f"  mean over folds: accuracy {report['accuracy_mean']:.3f}, sd {report['accuracy_sd']:.3f}, "
        f"95% t-interval {low:.3f}-{high:.3f}; ECE {report['ece_mean']:.3f} (sd {report['ece_sd']:.3f})",
        f"  pooled over all {report['pairs']} held-out pairs: accuracy {report['accuracy_pooled']:.3f} "
        f"(95% bootstrap CI {pooled_low:.3f}-{pooled_high:.3f})",
    ]
    return "\n".join(lines)


def summary_line(report: dict) -> str:
    """One line for logs and CI: mean +/- sd over folds, the t-interval, the pooled accuracy, the report's path."""
    low, high = report["accuracy_t_interval95"]
    return (
        f"cv: {report['kfold']} folds by prompt, accuracy {report['accuracy_mean']:.3f} "
        f"+/- {report['accuracy_sd']:.3f} "
        f"(mean +/- sd over folds; 95% t-interval {low:.3f}-{high:.3f}), pooled {report['accuracy_pooled']:.3f} on "
        f"{report['pairs']} pairs; {Path(report['output_dir']) / REPORT_FILE}"
    )
