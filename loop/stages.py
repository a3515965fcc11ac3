"""The people-in-the-loop stages of a round: candidates, judgments, and the quality report with the export.

Each calls the code of the `plumb collect` verb it stands for (import, generate,
simulate, quality, export) on the run's store, so a round is what a researcher would
run by hand. Each returns what the manifest records about it.
"""

import json
import logging
from collections import defaultdict
from pathlib import Path

import yaml

from loop.context import LoopRun
from plumb.data import DataError, load_records, prompt_key, rows_to_dataset, split_by_prompt

logger = logging.getLogger(__name__)


# Candidates


def round_prompts(run: LoopRun, round_number: int) -> list[dict]:
    """The round's prompts, as `{"prompt", "prompt_id"}` rows: the next `prompts_per_round` of the prompts split."""
    args = run.args
    records = load_records(args.prompts, args.prompts_split)
    start, stop = (round_number - 1) * args.prompts_per_round, round_number * args.prompts_per_round
    if stop > len(records):
        raise DataError(
            f"{args.prompts} [{args.prompts_split}]: round {round_number} needs prompts {start + 1}-{stop}, "
            f"but there are {len(records)}: lower prompts_per_round or rounds, or add prompts"
        )
    return [prompt_row(records[i], i) for i in range(start, stop)]


def prompt_row(record: dict, index: int) -> dict:
    """A prompts-format row from prompts data or a conversation (its last assistant turn dropped)."""
    if "prompt" in record:
        prompt = record["prompt"]
        prompt = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    elif "messages" in record:
        prompt = record["messages"][:-1]
    else:
        raise DataError(f"row {index}: no `prompt` or `messages` column")
    return {"prompt": prompt, "prompt_id": str(record.get("prompt_id") or f"prompt-{index}")}


def campaign_definition(run: LoopRun, round_number: int) -> dict:
    """The round's campaign YAML: the config's campaign settings with the round's name and policies."""
    args = run.args
    policy = run.policy_at_start(round_number)
    policies = [
        {"name": f"round-{round_number}-sample-{i}", "model": policy, "generation": dict(args.generation)}
        for i in range(1, args.samples_per_prompt + 1)
    ]
    if "sft" in args.compare_with and round_number > 1:  # in round 1 the samples are the SFT policy's
        policies.append({"name": "sft", "model": args.sft_policy, "generation": dict(args.generation)})
    if "previous" in args.compare_with and round_number > 1:
        policies.append(
            {
                "name": f"round-{round_number - 1}",
                "model": run.policy_at_start(round_number - 1),
                "generation": dict(args.generation),
            }
        )
    return {
        "kind": "pairwise",
        **args.campaign,
        "name": run.campaign_name(round_number),
        "policies": policies,
        "arena": False,
    }


def candidates(run: LoopRun, round_number: int) -> dict:
    """Create the round's campaign with its prompts, and have every policy of it answer every prompt."""
    from collect import generate, import_prompts
    from collect.domain.campaign import load_campaign
    from collect.services.generation import make_generator
    from collect.store import CampaignError, campaign_by_name, campaign_counts, opened_store

    folder = run.stage_dir(round_number, "candidates")
    rows = round_prompts(run, round_number)
    prompts_file = folder / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    campaign_file = folder / "campaign.yaml"
    campaign_file.write_text(yaml.safe_dump(campaign_definition(run, round_number), sort_keys=False))
    spec = load_campaign(campaign_file)

    # A rerun after a kill finds the prompts already stored (the import is one transaction): generate the rest.
    with opened_store(run.db) as sessions, sessions() as session:
        try:
            stored = campaign_counts(session=session, campaign=campaign_by_name(session=session, name=spec.name))
        except CampaignError:
            stored = {"prompts": 0}
    if stored["prompts"] == 0:
        import_prompts.main(str(campaign_file), source=str(prompts_file), split="train", db=run.db)
    generators = {p.name: make_generator(p, run.loaded_models()) for p in spec.policies}
    made = generate.main(spec.name, batch_size=run.args.generation_batch_size, db=run.db, generators=generators)
    with opened_store(run.db) as sessions, sessions() as session:
        counts = campaign_counts(session=session, campaign=campaign_by_name(session=session, name=spec.name))
    return {
        "campaign": spec.name,
        "policy": run.policy_at_start(round_number),
        "prompts_file": str(prompts_file),
        "new_candidates": sum(made["candidates"].values()),
        **counts,
    }


# Judgments


def judgments(run: LoopRun, round_number: int) -> dict:
    """The round's judgments: simulated raters through the scheduler, or people through the app (waited for)."""
    campaign = run.result(round_number, "candidates")["campaign"]
    if run.args.raters == "people":
        from loop.people import wait_for_people

        return wait_for_people(run, round_number, campaign)
    from collect.domain.simulated_raters import SimulatedRaterParams
    from collect.services.simulation import simulate
    from collect.store import opened_store

    scored = score_for_labelling(run, round_number, campaign)
    oracle = run.gold_judge() if run.args.oracle == "gold" else run.args.oracle
    with opened_store(run.db) as sessions:
        summary = simulate(
            sessions,
            campaign,
            raters=run.args.simulated_raters,
            oracle=oracle,
            params=SimulatedRaterParams(**run.args.simulated),
            seed=run.args.seed + round_number,
            max_judgments=run.args.labels_per_round,
        )
    return {"mode": "simulated", "oracle": oracle, "scored": scored, **summary}


def score_for_labelling(run: LoopRun, round_number: int, campaign: str) -> dict | None:
    """Before the round's labels: score its tasks with the campaign's `reward_model`, else the previous round's, when
    the campaign uses them (the `uncertainty` or `priority` strategy, pre-labels or auto-labels); None otherwise."""
    from collect.domain.campaign import campaign_from_dict

    spec = campaign_from_dict({"name": campaign, **run.args.campaign})
    uses_scores = spec.strategy in ("uncertainty", "priority") or spec.prelabels != "hidden" or spec.auto_label_above
    model = spec.reward_model or (run.reward_model(round_number - 1) if round_number > 1 else None)
    if not uses_scores or not model:
        if uses_scores:
            logger.info(
                "Round %d: no reward model yet to score campaign '%s'; tasks keep their order", round_number, campaign
            )
        return None
    from collect.score import ScoreCampaignArguments
    from collect.score import main as score_main

    return score_main(
        ScoreCampaignArguments(campaign=campaign, model_name_or_path=model, seed=run.args.seed, db=run.db)
    )


# Quality and export


def export(run: LoopRun, round_number: int) -> dict:
    """The agreement report and the pairwise export (this round's labels or every round's), split by prompt.

    Writes `pairs/train.jsonl` and `pairs/test.jsonl`: the test split is whole prompts of
    this round, held out from the reward model and from DPO alike.
    """
    from collect.export import main as export_main
    from collect.services.export.rows import ExportArguments

    folder = run.stage_dir(round_number, "export")
    campaign = run.result(round_number, "candidates")["campaign"]
    quality = quality_report(run, campaign, folder)
    summary = export_main(
        # Every row in one file: the round holds out its own test prompts below, across rounds.
        ExportArguments(
            campaign=campaign, format="pairwise", db=run.db, output_dir=str(folder / "round-pairs"), test_size=0
        )
    )
    rows = [dict(row) for row in load_records(str(folder / "round-pairs"))]
    rows = strongest_pairs(rows, run.args.pairs_per_prompt)
    if len(rows) < 2:
        raise DataError(
            f"round {round_number}: the export of campaign '{campaign}' has {len(rows)} pairs "
            f"({summary['left_out'] or 'nothing left out'}); a round needs labels to learn from"
        )
    train, test = split_by_prompt(rows_to_dataset(rows), test_size=run.args.test_size, seed=run.args.seed)
    train = [dict(row) for row in train]
    if run.args.data == "all":
        for earlier in range(1, round_number):
            train += read_pairs(Path(run.result(earlier, "export")["pairs"]) / "train.jsonl")
    pairs = folder / "pairs"
    pairs.mkdir(exist_ok=True)
    for name, split in (("train", train), ("test", [dict(row) for row in test])):
        (pairs / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in split))
    kinds = summary.get("judgments_by_rater_kind", {})
    return {
        "pairs": str(pairs),
        "train_pairs": len(train),
        "test_pairs": len(test),
        "round_pairs": len(rows),
        "labels": sum(kinds.values()),
        "labels_by_kind": kinds,
        "left_out": summary["left_out"],
        "agreement": quality,
    }


def read_pairs(path: Path) -> list[dict]:
    """The rows of a pairs file written by an earlier round."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def strongest_pairs(rows: list[dict], per_prompt: int) -> list[dict]:
    """At most `per_prompt` pairs per prompt, those with the largest margin (0 keeps every pair); order kept."""
    if not per_prompt:
        return rows
    groups = defaultdict(list)
    for index, row in enumerate(rows):
        groups[prompt_key(row)].append(index)
    kept = set()
    for indices in groups.values():
        ranked = sorted(indices, key=lambda i: -(rows[i].get("margin") or 0.0))
        kept.update(ranked[:per_prompt])
    return [row for index, row in enumerate(rows) if index in kept]


def quality_report(run: LoopRun, campaign: str, folder: Path) -> dict | None:
    """The raters' agreement on the round's pairwise tasks (None when no task has two raters)."""
    from collect.export import main as export_main
    from collect.quality import QualityArguments
    from collect.quality import main as quality_main
    from collect.services.export.rows import ExportArguments

    if run.args.campaign.get("kind", "pairwise") != "pairwise":
        return None
    export_main(ExportArguments(campaign=campaign, format="judgments", db=run.db, output_dir=str(folder / "judgments")))
    try:
        report = quality_main(QualityArguments(judgments=str(folder / "judgments"), output_dir=str(folder / "quality")))
    except DataError as error:
        logger.warning("No agreement report for campaign '%s': %s", campaign, error)
        return None
    return report["agreement"]
