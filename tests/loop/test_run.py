"""`plumb loop run` end to end on tiny models: two rounds with simulated raters, figures checked against the store."""

import json

import numpy as np
from sqlalchemy import func, select

from loop.manifest import STAGES, read_manifest
from plumb.cli import main as plumb
from plumb.data import prompt_key


def live_judgments(db: str, campaign: str) -> int:
    """Live judgments of a campaign, counted straight from the store."""
    from collect.store import Judgment, campaign_by_name, live_judgments_query, opened_store

    with opened_store(db) as sessions, sessions() as session:
        query = live_judgments_query(campaign_by_name(session=session, name=campaign).id).subquery()
        del Judgment
        return session.scalar(select(func.count()).select_from(query))


def test_two_rounds_with_simulated_raters(tiny_loop, tmp_path):
    config = tiny_loop()
    assert plumb(["loop", "run", "--config", str(config)]) == 0
    run = tmp_path / "run"
    manifest = read_manifest(run)
    assert all(manifest["stages"][f"round-{r}/{s}"]["state"] == "done" for r in (1, 2) for s in STAGES)
    results = {key: entry["result"] for key, entry in manifest["stages"].items()}

    # Round 2 samples from round 1's aligned policy, and its prompts are new.
    assert results["round-2/candidates"]["policy"] == results["round-1/align"]["policy"]
    prompts = [{json.loads(line)["prompt_id"] for line in open(results[f"round-{r}/candidates"]["prompts_file"])}
               for r in (1, 2)]
    assert len(prompts[0]) == len(prompts[1]) == 6 and not prompts[0] & prompts[1]
    # 6 prompts x 3 samples: C(3,2) = 3 pairs per prompt, 18 tasks, each judged by 2 simulated raters (3 on a split).
    assert results["round-1/candidates"]["tasks"] == 18

    report = json.loads((run / "report.json").read_text())
    assert [row["round"] for row in report["rounds"]] == [1, 2]
    for row, r in zip(report["rounds"], (1, 2)):
        campaign = results[f"round-{r}/candidates"]["campaign"]
        stored = live_judgments(str(run / "collect.sqlite"), campaign)
        assert 36 <= stored <= 54
        assert row["labels"] == row["labels_simulated"] == stored and row["labels_human"] == 0

        # Held-out pairs are whole prompts of this round, never in training.
        pairs = results[f"round-{r}/export"]["pairs"]
        train = [json.loads(line) for line in open(f"{pairs}/train.jsonl")]
        test = [json.loads(line) for line in open(f"{pairs}/test.jsonl")]
        assert test and not {prompt_key(p) for p in train} & {prompt_key(p) for p in test}
        assert row["pairs"] == len(train) + len(test)

        # The win rate is what the judge's scores of the saved responses say (ties count half).
        evaluation = json.loads((run / f"round-{r}" / "eval" / "report.json").read_text())
        assert row["win_rate_vs_sft"] == evaluation["win_rate"]
        assert row["win_rate_vs_sft"] == rescored_win_rate(run, r, evaluation["judge"])
    assert report["rounds"][1]["win_rate_vs_previous"] is not None
    assert (run / "report.md").read_text().count("\n| 2 |") == 1 and (run / "report.png").is_file()


def rescored_win_rate(run, round_number, judge) -> float:
    """Score the round's saved responses and the SFT policy's with the judge again, and count wins by hand."""
    from align.rewards import RewardModels
    from loop.evaluation import conversations

    policy = json.loads((run / f"round-{round_number}" / "eval" / "responses.json").read_text())["texts"]
    sft = json.loads((run / "sft-responses.json").read_text())["texts"]
    prompts = [json.loads(line)["prompt"] for line in open(run.parent / "prompts" / "prompts-test.jsonl")][:5]
    scorer = RewardModels(judge)
    mine, theirs = (scorer.score(conversations(prompts, texts)).mean(axis=0) for texts in (policy, sft))
    return float(np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(mine, theirs)]))
