"""`plumb collect export`: contract formats, majority with ties and both-bad, provenance, and TRL training on it."""

import json
from pathlib import Path

import datasets
import pytest
from sqlalchemy import select

from collect.export import config_types, main
from collect.services.export.rows import ExportArguments
from collect.store import Assignment, Task, rater_by_name, record_judgment, retract_judgment
from plumb.config import parse_config
from plumb.data import validate
from tests.support.campaigns import seed_campaign, seed_raters

REPO = Path(__file__).resolve().parents[2]
# Canonical answers per task (first candidate: policy "sft", second: "dpo"); None = not judged.
VOTES = [
    [2, 3, -1],  # task 0: first better twice; margin (2 + 3) / 2
    [-1, -1],  # task 1: second better
    [0, 0, 1],  # task 2: tie
    ["both_bad", "both_bad", 1],  # task 3: both bad
    [3, -3],  # task 4: split vote
    None,  # task 5: nobody judged it yet
]


def judge(sessions, rater_name, task_id, vote, **extra):
    """Store one judgment in canonical order, as the scheduler would after un-shuffling (`extra`: edit, flags)."""
    with sessions.begin() as session:
        rater = rater_by_name(session=session, name=rater_name)
        assignment = Assignment(
            task_id=task_id, rater_id=rater.id, candidate_order=[0, 1], expires_at=session.get(Task, task_id).created_at
        )
        session.add(assignment)
        session.flush()
        answer = {"both_bad": True} if vote == "both_bad" else {"preference": vote}
        return record_judgment(session=session, assignment=assignment, **answer, **extra)


@pytest.fixture
def judged_db(db_url):
    """A campaign with the votes above, plus one undone judgment that must not count (SQLite and PostgreSQL)."""
    from collect.store import make_engine, session_factory, upgrade

    engine = make_engine(db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_campaign(
        sessions,
        prompts=len(VOTES),
        gold=0,
        raters_per_task=3,
        max_raters_per_task=3,
        guidelines="Prefer **helpful** answers.",
    )
    raters = seed_raters(sessions, 3)
    with sessions() as session:
        task_ids = session.scalars(select(Task.id).order_by(Task.id)).all()
    for task_id, votes in zip(task_ids, VOTES):
        for rater, vote in zip(raters, votes or []):
            judge(sessions, rater, task_id, vote)
    with sessions.begin() as session:  # rater2 said "second better" on task 1, then undid it
        undone = judge(sessions, "rater2", task_ids[1], -3)
        retract_judgment(session=session, judgment=session.merge(undone))
    engine.dispose()
    return db_url


def export(db, tmp_path, **options):
    options = {"test_size": 0, **options}
    args = ExportArguments(
        campaign="demo", db=db, output_dir=str(tmp_path / options.get("format", "pairwise")), **options
    )
    summary = main(args)
    return datasets.load_dataset(args.output_dir, split="train"), summary


def test_pairwise_export_aggregates_by_majority_and_says_what_it_left_out(judged_db, tmp_path):
    rows, summary = export(judged_db, tmp_path)
    validate(rows, "pairwise")
    assert [(row["chosen"][0]["content"], row["margin"]) for row in rows] == [
        ("answer 0 from sft", 2.5),
        ("answer 1 from dpo", 1.0),
    ]
    assert rows[0]["meta"]["raters"] == ["rater0", "rater1", "rater2"]
    assert rows[0]["meta"]["agreement"] == pytest.approx(2 / 3)
    assert rows[1]["meta"]["judgments"] == 2 and rows[1]["meta"]["policies"] == ["dpo", "sft"]
    assert summary["left_out"] == {"tie": 1, "both bad": 1, "split vote": 1, "no judgments yet": 1}
    card = (tmp_path / "pairwise" / "README.md").read_text()
    assert "Prefer **helpful** answers." in card and "split vote: 1" in card
    assert json.loads((tmp_path / "pairwise" / "summary.json").read_text()) == summary


def test_split_votes_can_be_settled_by_strength(judged_db, tmp_path):
    rows, summary = export(judged_db, tmp_path, on_split="strength")
    assert len(rows) == 2 and summary["left_out"]["split vote"] == 1  # +3 and -3 sum to zero: still split


def test_kto_marks_both_bad_as_negatives_when_asked(judged_db, tmp_path):
    rows, summary = export(judged_db, tmp_path, format="kto", both_bad_as_negatives=True)
    validate(rows, "unpaired")
    labels = [(row["meta"]["task_id"], row["completion"][0]["content"], row["label"]) for row in rows]
    assert labels[-2:] == [(4, "answer 3 from sft", False), (4, "answer 3 from dpo", False)]
    assert labels[0] == (1, "answer 0 from sft", True) and len(rows) == 6


def test_ranking_and_sft_exports(judged_db, tmp_path):
    ranking, _ = export(judged_db, tmp_path, format="ranking")
    validate(ranking, "ranking")
    assert [row["ranks"] for row in ranking] == [[1, 2], [2, 1], [1, 1]]
    sft, summary = export(judged_db, tmp_path, format="sft")
    validate(sft, "sft")
    assert [row["messages"][-1]["content"] for row in sft] == ["answer 0 from sft", "answer 1 from dpo"]
    assert summary["left_out"]["tie"] == 1


def test_per_rater_export_keeps_every_raters_own_rows(judged_db, tmp_path):
    rows, summary = export(judged_db, tmp_path, per_rater=True)
    assert summary["judgments"] == 13 and summary["raters"] == 3
    task1 = [(row["meta"]["raters"], row["margin"]) for row in rows if row["meta"]["task_id"] == 1]
    assert task1 == [(["rater0"], 2.0), (["rater1"], 3.0), (["rater2"], 1.0)]
    # Each vote stands alone: the two ties of task 2 and the two both-bad votes of task 3 give no pair.
    assert summary["left_out"] == {"tie": 2, "both bad": 2, "no judgments yet": 1} and len(rows) == 9


def test_the_shipped_export_config_parses(tmp_path):
    path = REPO / "configs" / "collect" / "export.yaml"
    (args,) = parse_config(config_types(), ["--config", str(path), "--output_dir", str(tmp_path)])
    assert args.format == "pairwise" and args.output_dir == str(tmp_path)
    with pytest.raises(Exception, match="format must be one of"):
        parse_config(config_types(), ["--config", str(path), "--format", "csv"])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the rows are the same from either database
def test_an_exported_pairwise_dataset_trains_trl_reward_and_dpo_one_step(
    judged_db, tmp_path, tiny_reward_dir, tiny_policy_dir
):
    import torch
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer

    from plumb.models import load_policy, load_reward_backbone

    rows, _ = export(judged_db, tmp_path)
    common = {
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "report_to": [],
        "save_strategy": "no",
        "bf16": False,
        "use_cpu": True,
        "logging_steps": 1,
    }
    model, tokenizer = load_reward_backbone(tiny_reward_dir)
    before = [p.detach().clone() for p in model.parameters()]
    reward = RewardTrainer(
        model=model,
        args=RewardConfig(output_dir=str(tmp_path / "rm"), **common),
        train_dataset=rows,
        processing_class=tokenizer,
    )
    reward.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))

    policy, tokenizer = load_policy(tiny_policy_dir)
    before = [p.detach().clone() for p in policy.parameters()]
    dpo = DPOTrainer(
        model=policy,
        args=DPOConfig(output_dir=str(tmp_path / "dpo"), max_length=64, **common),
        train_dataset=rows,
        processing_class=tokenizer,
    )
    dpo.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))


def test_push_to_hub_sends_the_dataset_and_its_card(judged_db, tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub import DatasetCard

    pushed = []

    class FakeApi:
        def create_repo(self, repo_id, **kwargs):
            pushed.append(("create_repo", repo_id, kwargs["repo_type"]))
            return f"https://huggingface.co/datasets/{repo_id}"

        def upload_folder(self, **kwargs):  # one commit: the Parquet shards and the card that names them
            folder = Path(kwargs["folder_path"])
            card = DatasetCard.load(folder / "README.md")
            rows = sum(len(split) for split in datasets.load_dataset(str(folder)).values())
            pushed.append(
                ("upload_folder", kwargs["repo_id"], kwargs["repo_type"], rows, "Left out, and why" in card.text)
            )

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    (args,) = parse_config(
        config_types(),
        [
            "--campaign",
            "demo",
            "--db",
            judged_db,
            "--per-rater",
            "--push-to-hub",
            "team/prefs",
            "--output_dir",
            str(tmp_path / "o"),
        ],
    )
    main(args)
    assert pushed == [("create_repo", "team/prefs", "dataset"), ("upload_folder", "team/prefs", "dataset", 9, True)]


def unjudged_task(db_url) -> tuple:
    """(sessions, engine, id of the task nobody judged in `judged_db`)."""
    from collect.store import make_engine, session_factory

    engine = make_engine(db_url)
    sessions = session_factory(engine)
    with sessions() as session:
        return sessions, engine, session.scalars(select(Task.id).order_by(Task.id)).all()[5]


def test_sft_rows_use_the_raters_edits_instead_of_the_best_candidate(judged_db, tmp_path):
    sessions, engine, task_id = unjudged_task(judged_db)
    judge(sessions, "rater0", task_id, 2, edit="A kinder answer 5.")
    judge(sessions, "rater1", task_id, 1, edit="  A kinder answer 5.\n")  # the same text: one row, two editors
    judge(sessions, "rater2", task_id, -1, edit="A shorter answer 5.")
    engine.dispose()
    sft, summary = export(judged_db, tmp_path, format="sft")
    validate(sft, "sft")
    rows = [
        (row["messages"][-1]["content"], row["meta"]["edited"], row["meta"]["raters"], row["meta"]["policies"])
        for row in sft
    ]
    assert rows == [
        ("answer 0 from sft", False, ["rater0", "rater1", "rater2"], ["sft"]),
        ("answer 1 from dpo", False, ["rater0", "rater1"], ["dpo"]),
        ("A kinder answer 5.", True, ["rater0", "rater1"], ["sft"]),
        ("A shorter answer 5.", True, ["rater2"], ["dpo"]),
    ]
    assert sft[2]["messages"][0] == {"role": "user", "content": "question 5"}
    assert summary["left_out"] == {"tie": 1, "both bad": 1, "split vote": 1}
    pairwise, _ = export(judged_db, tmp_path, format="pairwise")  # nobody compared an edit: pairs stay as judged
    assert "A kinder answer 5." not in str(pairwise["chosen"]) and len(pairwise) == 3


def test_battles_format_feeds_the_leaderboard_and_leaves_identity_leaks_out(judged_db, tmp_path):
    from collect.leaderboard import LeaderboardArguments
    from collect.leaderboard import main as leaderboard

    sessions, engine, task_id = unjudged_task(judged_db)
    judge(sessions, "rater0", task_id, -3, flags=["identity leak"])
    engine.dispose()
    battles, summary = export(judged_db, tmp_path, format="battles")
    assert len(battles) == 13 and summary["left_out"] == {"identity leak": 1}
    assert battles[0] == {"model_a": "sft", "model_b": "dpo", "winner": "model_a"}
    assert sorted(set(battles["winner"])) == ["both_bad", "model_a", "model_b", "tie"]
    with_leaks, summary = export(judged_db, tmp_path / "leaks", format="battles", include_identity_leaks=True)
    assert len(with_leaks) == 14 and summary["left_out"] == {}
    board = leaderboard(
        LeaderboardArguments(battles=str(tmp_path / "battles"), output_dir=str(tmp_path / "board"), bootstrap_rounds=0)
    )
    assert {row["policy"] for row in board["ratings"]} == {"sft", "dpo"} and board["battles"] == 13


def test_a_push_that_cannot_reach_the_hub_names_the_repo(judged_db, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from collect.services.export.dataset import PushError

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # never reach out, even where a network is
    (args,) = parse_config(
        config_types(),
        ["--campaign", "demo", "--db", judged_db, "--push-to-hub", "team/prefs", "--output_dir", str(tmp_path / "o")],
    )
    with pytest.raises(PushError, match="could not push to the Hub dataset repo 'team/prefs'.*saved in"):
        main(args)
    assert (tmp_path / "o" / "summary.json").exists()  # the export itself is kept
    args.push_to_hub = "not a repo id!"
    with pytest.raises(PushError, match="'not a repo id!' is not a Hub repo id"):
        main(args)


def test_a_failed_push_is_one_line_from_the_command_line(judged_db, tmp_path):
    import os
    import subprocess
    import sys

    command = [
        sys.executable,
        "-m",
        "plumb",
        "collect",
        "export",
        "--campaign",
        "demo",
        "--db",
        judged_db,
        "--push_to_hub",
        "team/prefs",
        "--output_dir",
        str(tmp_path / "o"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "plumb collect: error: could not push to the Hub dataset repo 'team/prefs'" in result.stderr


def test_arena_battles_are_training_data_unless_cut_off_or_leaked(sqlite_url, tmp_path):
    from collect.services.arena.battles import cast_vote
    from collect.store import make_engine, session_factory, upgrade
    from tests.support.arena import answered, arena_campaign

    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    spec = arena_campaign(sessions, arena_min_seconds=0)
    whole = answered(spec, ("Rain is water falling from clouds.", "Rain falls."), seed=1)
    whole.finish(1, now=104.0)  # both answers ended before the vote
    cut = answered(spec, ("Rain is", "Rain falls from"), seed=2)  # B was still streaming at the vote
    leak = answered(spec, ("I am Plumby: rain is water.", "Rain falls."), seed=0)
    leak.finish(1, now=104.0)
    for battle in (whole, cut, leak):
        cast_vote(sessions, campaign="arena", battle=battle, rater_name="ana", vote="A is better", now=110.0)
    engine.dispose()

    def export(**options):
        args = ExportArguments(
            campaign="arena", db=sqlite_url, output_dir=str(tmp_path / "out"), test_size=0, **options
        )
        summary = main(args)
        return datasets.load_dataset(str(tmp_path / "out"), split="train").to_list(), summary

    rows, summary = export()
    assert [row["chosen"][0]["content"] for row in rows] == ["Rain is water falling from clouds."]
    assert rows[0]["meta"]["source"] == "arena"
    assert summary["left_out"] == {
        "arena vote before both answers finished (leaderboard only)": 1,
        "identity leak (arena vote)": 1,
    }
    rows, _ = export(include_identity_leaks=True)
    assert len(rows) == 2
    battles, _ = export(format="battles")
    assert len(battles) == 2  # the leaderboard counts the early vote: it judged what was shown
