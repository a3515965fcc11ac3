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
    prompts = [
        {json.loads(line)["prompt_id"] for line in open(results[f"round-{r}/candidates"]["prompts_file"])}
        for r in (1, 2)
    ]
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
    # Round 2 against round 1: the two rounds' saved responses rescored by the same judge.
    judge = json.loads((run / "round-2" / "eval" / "report.json").read_text())["judge"]
    assert report["rounds"][1]["win_rate_vs_previous"] == rescored_win_rate(run, 2, judge, against="round-1")
    assert (run / "report.md").read_text().count("\n| 2 |") == 1 and (run / "report.png").is_file()


def rescored_win_rate(run, round_number, judge, against: str = "sft") -> float:
    """Score the round's saved responses and SFT's (or round-N's) with the judge again; count wins by hand."""
    from align.rewards import RewardModels
    from loop.evaluation import conversations

    policy = json.loads((run / f"round-{round_number}" / "eval" / "responses.json").read_text())["texts"]
    other = run / ("sft-responses.json" if against == "sft" else f"{against}/eval/responses.json")
    sft = json.loads(other.read_text())["texts"]
    prompts = [json.loads(line)["prompt"] for line in open(run.parent / "prompts" / "prompts-test.jsonl")][:5]
    scorer = RewardModels(judge)
    mine, theirs = (scorer.score(conversations(prompts, texts)).mean(axis=0) for texts in (policy, sft))
    return float(np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(mine, theirs)]))


def test_a_stage_killed_with_sigkill_is_run_again_and_finished_ones_are_not(tiny_loop, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    config = tiny_loop(rounds=1)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "plumb", "loop", "run", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    killed = None
    deadline = time.monotonic() + 600
    while killed is None and process.poll() is None and time.monotonic() < deadline:
        stages = read_manifest(run)["stages"]
        # Kill the first stage after the export as soon as it is seen running, in the middle of its work.
        running = [key for key, entry in stages.items() if entry["state"] == "running"]
        if running and running[0] in ("round-1/reward", "round-1/align"):
            os.kill(process.pid, signal.SIGKILL)
            killed = running[0]
        time.sleep(0.02)
    process.wait(timeout=60)
    assert killed, "the loop finished before a training stage could be killed"
    before = read_manifest(run)["stages"]
    assert before[killed]["state"] == "running"  # never taken as done
    done_before = {key: entry for key, entry in before.items() if entry["state"] == "done"}
    assert "round-1/export" in done_before

    assert plumb(["loop", "run", "--config", str(config)]) == 0
    after = read_manifest(run)["stages"]
    assert all(after[f"round-1/{stage}"]["state"] == "done" for stage in STAGES)
    for key, entry in done_before.items():  # finished stages are not run again
        assert after[key]["started"] == entry["started"] and after[key]["attempts"] == 1
    assert after[killed]["attempts"] == 2 and after[killed]["started"] > before[killed]["started"]

    # `--redo eval` runs a finished stage again (say, after a change of judge), and nothing else.
    assert plumb(["loop", "run", "--config", str(config), "--redo", "eval"]) == 0
    again = read_manifest(run)["stages"]
    assert again["round-1/eval"]["attempts"] == after["round-1/eval"]["attempts"] + 1
    assert all(
        again[f"round-1/{stage}"]["started"] == after[f"round-1/{stage}"]["started"]
        for stage in STAGES
        if stage != "eval"
    )


def test_the_reward_gate_stops_the_loop_with_the_reason_and_a_report(tiny_loop, tmp_path, capsys):
    config = tiny_loop(rounds=2, min_accuracy=1.01)
    assert plumb(["loop", "run", "--config", str(config)]) == 1
    error = capsys.readouterr().err
    run = tmp_path / "run"
    accuracy = read_manifest(run)["stages"]["round-1/reward"]["result"]["accuracy"]
    assert f"held-out accuracy {accuracy:.3f} is below min_accuracy 1.01" in error
    assert "round-1/reward/model/eval_report.json" in error
    stages = read_manifest(run)["stages"]
    assert "round-1/align" not in stages and read_manifest(run)["stopped"]
    report = json.loads((run / "report.json").read_text())
    assert report["rounds"][0]["reward_accuracy"] == accuracy and report["stopped"]
    # A rerun with the same gate stops at the same place, without training again.
    assert plumb(["loop", "run", "--config", str(config)]) == 1
    assert read_manifest(run)["stages"]["round-1/reward"]["attempts"] == 1


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_loop_with_people_goes_on_once_the_target_is_met(tiny_loop, tmp_path):
    import threading
    import time

    import httpx

    from collect.store import create_rater, opened_store
    from loop.config import LoopArguments
    from loop.run import main as loop_main
    from plumb.config import parse_config

    port = _free_port()
    config = tiny_loop(
        rounds=1, raters="people", serve="api", port=port, labels_per_round=5, poll_seconds=0.2, judge="round"
    )
    (args,) = parse_config((LoopArguments,), ["--config", str(config)])
    outcome = {}
    loop = threading.Thread(target=lambda: outcome.update(status=loop_main(args, config_path=str(config))))
    loop.start()
    run, base = tmp_path / "run", f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # the campaign is served once its candidates exist
        stages = read_manifest(run)["stages"]
        if stages.get("round-1/judgments", {}).get("state") == "running":
            try:
                httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
                break
            except httpx.TransportError:
                pass
        time.sleep(0.1)
    campaign = read_manifest(run)["stages"]["round-1/candidates"]["result"]["campaign"]
    with opened_store(str(run / "collect.sqlite")) as sessions, sessions.begin() as session:
        _, token = create_rater(session=session, name="ada")
    headers = {"Authorization": f"Bearer {token}"}
    for answer in (3, -2, 1, -1):
        task = httpx.get(f"{base}/campaigns/{campaign}/next", headers=headers).json()
        httpx.post(
            f"{base}/campaigns/{campaign}/judgments",
            headers=headers,
            json={"assignment_id": task["assignment_id"], "preference": answer},
        ).raise_for_status()
    time.sleep(1.0)  # four of five: the loop must still be waiting
    assert read_manifest(run)["stages"]["round-1/judgments"]["state"] == "running"
    task = httpx.get(f"{base}/campaigns/{campaign}/next", headers=headers).json()
    httpx.post(
        f"{base}/campaigns/{campaign}/judgments",
        headers=headers,
        json={"assignment_id": task["assignment_id"], "preference": 2},
    ).raise_for_status()
    loop.join(timeout=300)
    assert outcome.get("status") == 0
    stages = read_manifest(run)["stages"]
    assert stages["round-1/judgments"]["result"] == {
        "mode": "people",
        "target": 5,
        "judgments": 5,
        "by_kind": {"human": 5},
    }
    assert all(stages[f"round-1/{stage}"]["state"] == "done" for stage in STAGES)
    row = json.loads((run / "report.json").read_text())["rounds"][0]
    assert (row["labels_human"], row["labels_simulated"]) == (5, 0)
    assert row["judge"] == stages["round-1/reward"]["result"]["model"]


def test_with_the_uncertainty_strategy_a_round_labels_what_the_last_reward_model_doubts_most(tiny_loop, tmp_path):
    from collect.store import Candidate, Prompt, Task, campaign_by_name, opened_store
    from reward.score import load_reward_model, score_conversations
    from reward.uncertainty import doubt

    config = tiny_loop(
        rounds=2,
        campaign={"kind": "pairwise", "raters_per_task": 1, "max_raters_per_task": 1, "strategy": "uncertainty"},
        labels_per_round=6,
    )
    assert plumb(["loop", "run", "--config", str(config)]) == 0
    results = {key: entry["result"] for key, entry in read_manifest(tmp_path / "run")["stages"].items()}
    assert results["round-1/judgments"]["scored"] is None  # no reward model before round 1's
    scored = results["round-2/judgments"]["scored"]
    assert scored["tasks_scored"] == 18 and results["round-2/judgments"]["judgments"] == 6

    # Score round 2's tasks again with round 1's reward model, here: the 6 labelled are the 6 most doubtful.
    db, campaign = str(tmp_path / "run" / "collect.sqlite"), results["round-2/candidates"]["campaign"]
    with opened_store(db) as sessions, sessions() as session:
        campaign_id = campaign_by_name(session=session, name=campaign).id
        tasks = list(session.scalars(select(Task).where(Task.campaign_id == campaign_id)))
        texts = {c.id: c.completion for c in session.scalars(select(Candidate))}
        prompts = {t.id: session.get(Prompt, t.prompt_id).messages for t in tasks}
    model = load_reward_model(results["round-1/reward"]["model"])
    first = score_conversations(model, [prompts[t.id] + texts[t.candidate_ids[0]] for t in tasks], max_length=64)
    second = score_conversations(model, [prompts[t.id] + texts[t.candidate_ids[1]] for t in tasks], max_length=64)
    doubts = doubt(first - second)
    judged = [d for t, d in zip(tasks, doubts) if t.judgment_count > 0]
    waiting = [d for t, d in zip(tasks, doubts) if t.judgment_count == 0]
    assert len(judged) == 6 and min(judged) >= max(waiting) - 1e-6
