"""Task metrics of a policy on held-out references, each with a bootstrap interval over examples.

ROUGE-L, BLEU and exact match are computed by Hugging Face Evaluate with its own metric scripts, shipped in
plumb/assets/evaluate-metrics because `evaluate.load("rouge")` would download them; perplexity is that of the
reference answers given their prompts, under the policy, pooled over tokens (exp of the summed negative
log-likelihood over the summed token count), the figure SFT's eval loss gives. A metric Plumb does not ship is
refused before anything loads: evaluate would fetch it from the Hub, and Plumb runs offline.
"""

from importlib import resources
from pathlib import Path

import numpy as np

from plumb.config import ConfigError
from plumb.stats import bootstrap_ci, bootstrap_statistic_ci

METRICS = ("perplexity", "rouge_l", "bleu", "exact_match")
# Plumb's name -> the folder of evaluate's script under plumb/assets/evaluate-metrics
SCRIPTS = {"rouge_l": "rouge", "bleu": "sacrebleu", "exact_match": "exact_match"}
GENERATED = ("rouge_l", "bleu", "exact_match")  # the metrics that score generated answers


def check_metrics(names, *, key: str = "metrics") -> list[str]:
    """The metric names, checked; a `ConfigError` naming the key for one Plumb does not ship."""
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name not in METRICS:
            raise ConfigError(
                f"key '{key}': '{name}' is not a metric Plumb ships ({', '.join(METRICS)}); Hugging Face Evaluate "
                "would download it from the Hub, and Plumb runs offline"
            )
    return names


def load_metric(name: str):
    """Evaluate's own implementation of a shipped metric, loaded from plumb/assets (no download)."""
    import evaluate

    script = Path(str(resources.files("plumb") / "assets" / "evaluate-metrics" / SCRIPTS[name]))
    return evaluate.load(str(script), keep_in_memory=True)


def rouge_l(predictions: list[str], references: list[str]) -> np.ndarray:
    """(n,) ROUGE-L F-measure of each prediction against its reference."""
    scores = load_metric("rouge_l").compute(
        predictions=predictions, references=references, rouge_types=["rougeL"], use_aggregator=False
    )
    return np.asarray(scores["rougeL"], float)


def exact_match(predictions: list[str], references: list[str]) -> np.ndarray:
    """(n,) 1.0 where the answer equals the reference, ignoring case, punctuation and surrounding space."""
    metric = load_metric("exact_match")
    return np.array(
        [
            metric.compute(predictions=[p.strip()], references=[r.strip()], ignore_case=True, ignore_punctuation=True)[
                "exact_match"
            ]
            for p, r in zip(predictions, references, strict=True)
        ],
        float,
    )


def corpus_bleu(predictions: list[str], references: list[str]):
    """BLEU (0-100) of a set of examples given by their indices: a function of the index array."""
    metric = load_metric("bleu")

    def bleu(indices) -> float:
        chosen = [predictions[i] for i in indices]
        return float(metric.compute(predictions=chosen, references=[[references[i]] for i in indices])["score"])

    return bleu


def text_metrics(
    predictions: list[str],
    references: list[str],
    *,
    names,
    samples: int = 1000,
    seed: int = 0,
    short_answer_words: int = 5,
) -> dict:
    """ROUGE-L, BLEU and exact match (those of `names`) with 95% bootstrap intervals over examples.

    Exact match is scored only where the reference is a short answer (at most `short_answer_words` words):
    on longer references it is near zero whatever the model does."""
    report = {}
    if "rouge_l" in names:
        per_example = rouge_l(predictions, references)
        report["rouge_l"] = float(per_example.mean())
        report["rouge_l_ci95"] = list(bootstrap_ci(per_example, samples=samples, seed=seed))
    if "bleu" in names:
        bleu = corpus_bleu(predictions, references)
        report["bleu"] = bleu(np.arange(len(predictions)))
        report["bleu_ci95"] = list(bootstrap_statistic_ci(len(predictions), bleu, samples=samples, seed=seed))
    if "exact_match" in names:
        short = [i for i, ref in enumerate(references) if len(ref.split()) <= short_answer_words]
        report["exact_match_examples"] = len(short)
        if short:
            per_example = exact_match([predictions[i] for i in short], [references[i] for i in short])
            report["exact_match"] = float(per_example.mean())
            report["exact_match_ci95"] = list(bootstrap_ci(per_example, samples=samples, seed=seed))
    return report


def reference_log_likelihoods(model, tokenizer, prompts, references) -> tuple[np.ndarray, np.ndarray]:
    """(nll, tokens), each (n,): the summed negative log-likelihood of each reference answer given its prompt,
    and its token count, tokenized by the chat template as SFT trains on it (the answer's end token included)."""
    import torch

    nll, tokens = [], []
    with torch.inference_mode():
        for prompt, reference in zip(prompts, references, strict=True):
            context = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=False)
            full = tokenizer.apply_chat_template(
                prompt + [{"role": "assistant", "content": reference}], return_dict=False
            )
            if full[: len(context)] != context:  # the answer must extend the prompt, or the split is wrong
                raise ValueError(f"the chat template does not extend the prompt with the answer: {reference[:60]!r}")
            ids = torch.tensor([full], device=model.device)
            logits = model(input_ids=ids).logits[0, len(context) - 1 : -1].float()
            targets = ids[0, len(context) :]
            nll.append(torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item())
            tokens.append(len(targets))
    return np.array(nll), np.array(tokens, float)


def perplexity_report(nll, tokens, *, samples: int = 1000, seed: int = 0) -> dict:
    """Pooled perplexity exp(sum nll / sum tokens) with its 95% bootstrap interval over examples."""
    nll, tokens = np.asarray(nll, float), np.asarray(tokens, float)

    def pooled(indices) -> float:
        return float(np.exp(nll[indices].sum() / tokens[indices].sum()))

    return {
        "perplexity": pooled(np.arange(len(nll))),
        "perplexity_ci95": list(bootstrap_statistic_ci(len(nll), pooled, samples=samples, seed=seed)),
        "reference_tokens": int(tokens.sum()),
    }


def format_metrics(report: dict, *, name: str = "") -> str:
    """Terminal lines for the metrics a report holds, each with its interval."""
    lines = []
    for metric in METRICS:
        if report.get(metric) is None:
            continue
        low, high = report[f"{metric}_ci95"]
        note = f" on {report['exact_match_examples']} short answers" if metric == "exact_match" else ""
        label = f"{name} {metric}".strip()
        lines.append(f"{label:<24} {report[metric]:.3f}  (95% CI {low:.3f} .. {high:.3f}){note}")
    if report.get("exact_match_examples") == 0:
        label = f"{name} exact_match".strip()
        lines.append(f"{label:<24} none: no reference is a short answer")
    return "\n".join(lines)


def plot_metrics(reports: dict[str, dict], path: Path, *, title: str) -> Path:
    """task_metrics.png: one panel per metric, a bar per model with its 95% interval."""
    from matplotlib.figure import Figure

    shown = [m for m in METRICS if any(r.get(m) is not None for r in reports.values())]
    figure = Figure(figsize=(3 * max(len(shown), 1), 3.5), layout="constrained")
    for k, metric in enumerate(shown):
        axes = figure.add_subplot(1, len(shown), k + 1)
        names = [name for name, r in reports.items() if r.get(metric) is not None]
        values = [reports[name][metric] for name in names]
        errors = np.array(
            [[v - reports[n][f"{metric}_ci95"][0], reports[n][f"{metric}_ci95"][1] - v] for n, v in zip(names, values)]
        ).T
        axes.bar(names, values, yerr=errors, capsize=4, color=[f"C{i}" for i in range(len(names))])
        axes.set_title(metric)
    figure.suptitle(title)
    figure.savefig(path, dpi=110)
    return path


def conversations_to_references(records, *, where: str) -> tuple[list[list[dict]], list[str]]:
    """(prompts, references) of conversations (`messages`): each one's last turn, an assistant answer, is the
    reference and the turns before it the prompt. A `DataError` names the row whose last turn is not an answer."""
    from plumb.data import DataError

    prompts, references = [], []
    for row, record in enumerate(records):
        messages = record["messages"]
        if not messages or messages[-1]["role"] != "assistant" or len(messages) < 2:
            raise DataError(f"{where} row {row}: key 'messages' must end with an assistant answer after a prompt")
        prompts.append(messages[:-1])
        references.append(messages[-1]["content"])
    return prompts, references


def policy_report(
    model,
    tokenizer,
    prompts,
    references,
    *,
    metrics,
    generation: dict,
    batch_size: int = 8,
    samples: int = 1000,
    seed: int = 0,
    short_answer_words: int = 5,
    answers: list[str] | None = None,
    desc: str = "Generating",
) -> tuple[dict, list[str] | None]:
    """(report, answers): one policy's task metrics on (prompt, reference) examples; its answers are generated
    (with `generation`) unless given, and only when a metric scores them."""
    report = {"examples": len(prompts)}
    if "perplexity" in metrics:
        nll, tokens = reference_log_likelihoods(model, tokenizer, prompts, references)
        report.update(perplexity_report(nll, tokens, samples=samples, seed=seed))
    if any(metric in GENERATED for metric in metrics):
        if answers is None:
            from plumb.generation import generate_all, local_generator

            generator = local_generator(model, tokenizer, generation)
            answers = generate_all(generator, prompts, batch_size=batch_size, desc=desc)
        report.update(
            text_metrics(
                answers,
                references,
                names=metrics,
                samples=samples,
                seed=seed,
                short_answer_words=short_answer_words,
            )
        )
    return report, answers
