"""The evaluation stage of a round: the new policy against the SFT policy and the previous round's, under a judge.

The judge is not used in training: the gold judge when raters are simulated (they follow
it with noise, and Plumb's own reward model learns from their labels), or, with people,
the round's reward model plus a human A/B campaign written for `plumb collect import`.
Responses are greedy by default, so a policy's answers are generated once: the SFT
policy's once per run, each round's policy once in its own round.
"""

import hashlib
import json
import logging
from pathlib import Path

from loop.context import LoopRun
from loop.stages import prompt_row

logger = logging.getLogger(__name__)

EVAL_DEFAULTS = {
    "max_new_tokens": 64,
    "do_sample": False,
    "temperature": 1.0,
    "top_p": 1.0,
    "batch_size": 16,
    "bootstrap_samples": 1000,
    "length_tolerance": 0.2,
}


def eval_settings(run: LoopRun) -> dict:
    """The evaluation's decoding and statistics settings: the defaults with the config's `eval` section over them."""
    unknown = set(run.args.eval) - set(EVAL_DEFAULTS)
    if unknown:
        from plumb.config import ConfigError

        raise ConfigError(
            f"{run.config_path}: section 'eval': unknown key(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(EVAL_DEFAULTS)})"
        )
    return {**EVAL_DEFAULTS, **run.args.eval}


def eval_prompts(run: LoopRun) -> list[list[dict]]:
    """The held-out prompts of the evaluation (the first `eval_prompts` of `eval_split`)."""
    from plumb.data import load_records

    records = load_records(run.args.prompts, run.args.eval_split)
    return [prompt_row(records[i], i)["prompt"] for i in range(min(run.args.eval_prompts, len(records)))]


def responses(path: Path, spec: str, prompts, settings: dict) -> list[str]:
    """A policy's responses to the prompts, read from `path` when it holds them for the same prompts and settings."""
    from plumb.generation import generate_all, load_generator

    generation = {key: settings[key] for key in ("max_new_tokens", "do_sample")}
    if settings["do_sample"]:
        generation.update(temperature=settings["temperature"], top_p=settings["top_p"])
    key = hashlib.sha256(json.dumps([spec, prompts, generation], sort_keys=True).encode()).hexdigest()
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved["texts"]
    texts = generate_all(
        load_generator(spec, generation),
        prompts,
        batch_size=settings["batch_size"],
        desc=f"Generating ({Path(spec).name or spec})",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "policy": spec, "generation": generation, "texts": texts}))
    return texts


def evaluate(run: LoopRun, round_number: int) -> dict:
    """Win rates of the round's policy against SFT (all prompts and similar-length ones) and the previous round, KL to
    SFT, mean lengths; writes report.json, samples.md and rewards.png in the stage's folder."""
    from align.evaluate import comparison_report, kl_estimate, policy_name, win_rate, write_campaign_rows, write_outputs
    from align.rewards import RewardModels
    from plumb.stats import bootstrap_ci

    folder, settings = run.stage_dir(round_number, "eval"), eval_settings(run)
    prompts = eval_prompts(run)
    policy = run.result(round_number, "align")["policy"]
    texts = {
        "policy": responses(folder / "responses.json", policy, prompts, settings),
        "reference": responses(run.run_dir / "sft-responses.json", run.args.sft_policy, prompts, settings),
    }

    judge_spec = run.judge(round_number)
    judge = RewardModels(judge_spec, batch_size=settings["batch_size"])

    def score(replies):  # the mean over the judge's models of each reply's reward
        return judge.score(conversations(prompts, replies)).mean(axis=0)

    scores = {name: score(replies) for name, replies in texts.items()}
    kl = kl_estimate(policy, run.args.sft_policy, prompts, texts["policy"])
    report = comparison_report(
        scores["policy"],
        scores["reference"],
        texts,
        kl=kl,
        samples=settings["bootstrap_samples"],
        seed=run.args.seed,
        length_tolerance=settings["length_tolerance"],
    )
    report.update(judge=judge_spec, policy=policy, reference=run.args.sft_policy)
    if round_number > 1:
        previous = responses(
            run.stage_dir(round_number - 1, "eval") / "responses.json",
            run.result(round_number - 1, "align")["policy"],
            prompts,
            settings,
        )
        wins = win_rate(scores["policy"], score(previous))
        report["win_rate_vs_previous"] = float(wins.mean())
        report["win_rate_vs_previous_ci"] = list(
            bootstrap_ci(wins, samples=settings["bootstrap_samples"], seed=run.args.seed)
        )
    write_outputs(folder, report, prompts, texts, scores)
    if run.args.to_campaign:
        write_campaign_rows(
            folder / "ab-campaign.jsonl",
            prompts,
            texts,
            {"policy": f"round-{round_number}", "reference": policy_name(run.args.sft_policy)},
        )
    logger.info(
        "Round %d: win rate %.3f against SFT (95%% CI %.3f-%.3f) under %s; KL %.2f nats",
        round_number,
        report["win_rate"],
        *report["win_rate_ci"],
        judge_spec,
        kl,
    )
    return report


def conversations(prompts, replies) -> list[list[dict]]:
    """Each prompt followed by its reply as the assistant's turn."""
    return [prompt + [{"role": "assistant", "content": reply}] for prompt, reply in zip(prompts, replies)]
