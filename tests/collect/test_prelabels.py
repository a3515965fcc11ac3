"""`plumb collect score`'s service: the uncertainty strategy's order, pre-labels as raters see them, auto-labels."""

import math
import random
import re
from pathlib import Path

import numpy as np
from sqlalchemy import select

from collect.services.campaign_cache import campaign_spec
from collect.services.export.items import load_items
from collect.services.export.rows import ExportArguments, export_rows
from collect.services.prelabels import score_campaign
from collect.services.read_models import prelabel_after_vote, task_view
from collect.services.scheduling import next_task, submit_judgment, undo_last
from collect.store import Judgment, Prompt, Rater, Task, campaign_by_name, rater_by_name
from tests.support.campaigns import margin_scorer, seed_campaign, seed_raters

# dpo's reward minus sft's on prompt i; sft scores 0. |margin| small = the model is unsure.
MARGINS = [3.0, 0.1, -2.0, 0.5, -0.05, 6.0]
LEAST_SURE_FIRST = [4, 1, 3, 2, 0, 5]


hand_scorer = margin_scorer(MARGINS)


def prompt_of(task_or_view) -> int:
    return int(re.search(r"question (\d+)", str(task_or_view)).group(1))


def lease_and_show(sessions, rater_name, seed=0):
    with sessions.begin() as session:
        campaign = campaign_by_name(session=session, name="demo")
        rater = rater_by_name(session=session, name=rater_name)
        assignment = next_task(session=session, campaign=campaign, rater=rater, rng=random.Random(seed))
        return None if assignment is None else task_view(session, assignment)


def judge(sessions, rater_name, view, preference=1):
    with sessions.begin() as session:
        rater = rater_by_name(session=session, name=rater_name)
        judgment = submit_judgment(
            session=session, rater=rater, assignment_id=view.assignment_id, preference=preference
        )
        return judgment.id


def prelabels_by_prompt(sessions) -> dict:
    with sessions() as session:
        return dict(
            session.execute(select(Prompt.external_id, Task.prelabel).join(Task, Task.prompt_id == Prompt.id)).all()
        )


def score(sessions, **kwargs):
    return score_campaign(sessions, "demo", scorer=hand_scorer, model="model:hand", **kwargs)


def test_the_uncertainty_strategy_serves_the_least_sure_first_once_per_rater_within_overlap(store):
    _, sessions = store
    seed_campaign(sessions, prompts=6, raters_per_task=2, max_raters_per_task=2, strategy="uncertainty")
    seed_raters(sessions, 3)
    summary = score(sessions)
    assert summary["tasks_scored"] == 6 and summary["prelabels"] == 6
    for rater in ("rater0", "rater1"):
        seen = []
        while (view := lease_and_show(sessions, rater)) is not None:
            seen.append(prompt_of(view.prompt))
            judge(sessions, rater, view)
        assert seen == LEAST_SURE_FIRST  # each task once, most doubtful first
    assert lease_and_show(sessions, "rater2") is None  # every task has its two judgments: overlap respected


def test_an_ensemble_that_disagrees_is_asked_about_first(store):
    _, sessions = store
    seed_campaign(sessions, prompts=2, raters_per_task=1, max_raters_per_task=1, strategy="uncertainty")
    seed_raters(sessions, 1)

    def ensemble(conversations):  # two models: they agree on prompt 0 (margin 1, 1), disagree on prompt 1 (3, -3)
        table = {("0", "dpo"): (1.0, 1.0), ("1", "dpo"): (3.0, -3.0)}
        keys = [re.match(r"answer (\d+) from (\w+)", c[-1]["content"]).groups() for c in conversations]
        return np.array([table.get(key, (0.0, 0.0)) for key in keys]).T

    score_campaign(sessions, "demo", scorer=ensemble, model="model:pair")
    assert prompt_of(lease_and_show(sessions, "rater0").prompt) == 1
    labels = prelabels_by_prompt(sessions)
    # Mean margins: 1 on prompt 0, 0 on prompt 1, which prefers neither side (confidence 0.5).
    assert labels["p0"]["confidence"] == round(1 / (1 + math.exp(-1)), 4) and labels["p1"]["confidence"] == 0.5


def test_a_pre_label_names_the_candidate_the_model_preferred_as_this_rater_sees_it(store):
    _, sessions = store
    seed_campaign(sessions, prompts=6, raters_per_task=1, max_raters_per_task=1, prelabels="shown")
    seed_raters(sessions, 1)
    score(sessions)
    for seed in range(6):
        view = lease_and_show(sessions, "rater0", seed=seed)
        i = prompt_of(view.prompt)
        shown = {c["label"]: c["completion"][0]["content"] for c in view.candidates}
        better = "dpo" if MARGINS[i] > 0 else "sft"
        assert shown[view.prelabel["label"]] == f"answer {i} from {better}"
        assert view.prelabel["confidence"] == round(1 / (1 + math.exp(-abs(MARGINS[i]))), 4)
        judge(sessions, "rater0", view)
    with sessions() as session:
        assert set(session.scalars(select(Judgment.prelabel_seen))) == {True}


def test_hidden_and_after_vote_pre_labels_stay_off_the_task_until_the_vote(store):
    _, sessions = store
    for display in ("hidden", "after_vote"):
        name = f"c-{display}"
        seed_campaign(sessions, name=name, prompts=1, raters_per_task=1, max_raters_per_task=1, prelabels=display)
        score_campaign(sessions, name, scorer=hand_scorer, model="model:hand")
    seed_raters(sessions, 1)
    for display in ("hidden", "after_vote"):
        with sessions.begin() as session:
            campaign = campaign_by_name(session=session, name=f"c-{display}")
            rater = rater_by_name(session=session, name="rater0")
            assignment = next_task(session=session, campaign=campaign, rater=rater, rng=random.Random(0))
            view = task_view(session, assignment)
            assert view.prelabel is None and "confidence" not in view.model_dump_json()
            submit_judgment(session=session, rater=rater, assignment_id=assignment.id, preference=1)
            after = prelabel_after_vote(campaign_spec(campaign), session.get(Task, assignment.task_id), assignment)
            if display == "hidden":
                assert after is None
            else:
                shown = {c["label"]: c["completion"][0]["content"] for c in view.candidates}
                assert shown[after["label"]] == "answer 0 from dpo"  # margin 3: dpo preferred
    with sessions() as session:
        assert list(session.scalars(select(Judgment.prelabel_seen).order_by(Judgment.id))) == [False, False]


def test_sure_tasks_are_auto_labelled_by_a_model_rater_but_the_audit_share_goes_to_people(store):
    _, sessions = store
    seed_campaign(sessions, prompts=6, raters_per_task=2, max_raters_per_task=2)
    seed_raters(sessions, 1)
    # Sure at 0.95: |margin| >= 2.95, prompts 0 (3.0) and 5 (6.0); audit share 0: both auto-labelled.
    summary = score(sessions, auto_label_above=0.95, audit_share=0.0)
    assert (summary["sure"], summary["auto_labelled"], summary["audit"]) == (2, 2, 0)
    with sessions() as session:
        model = session.scalar(select(Rater).where(Rater.name == "model:hand"))
        assert model.kind == "model"
        labels = dict(
            session.execute(
                select(Prompt.external_id, Judgment.preference)
                .join(Task, Task.prompt_id == Prompt.id)
                .join(Judgment, Judgment.task_id == Task.id)
                .where(Judgment.rater_id == model.id)
            ).all()
        )
    # Canonical order is (sft, dpo): dpo better is a negative preference; strength 3 from confidence 0.95.
    assert labels == {"p0": -3, "p5": -3}
    seen = []
    while (view := lease_and_show(sessions, "rater0")) is not None:
        seen.append(prompt_of(view.prompt))
        judge(sessions, "rater0", view)
    assert sorted(seen) == [1, 2, 3, 4]  # people are not asked about what the model labelled

    with sessions() as session:
        campaign = campaign_by_name(session=session, name="demo")
        items = load_items(session, campaign.id)
    rows, _ = export_rows(items, ExportArguments(format="pairwise"))
    sources = sorted(row["meta"]["source"] for row in rows)
    assert sources == ["model", "model", "pool", "pool", "pool", "pool"]
    rows, left_out = export_rows(items, ExportArguments(format="pairwise", drop_model_labels=True))
    assert [row["meta"]["source"] for row in rows] == ["pool"] * 4
    assert sum(left_out.values()) == 2


def test_the_audit_share_sends_some_sure_tasks_to_people(store):
    _, sessions = store
    margins = [5.0] * 40
    seed_campaign(sessions, prompts=40, raters_per_task=1, max_raters_per_task=1)

    def sure(conversations):
        return np.array([[margins[0] if "dpo" in c[-1]["content"] else 0.0 for c in conversations]])

    summary = score_campaign(sessions, "demo", scorer=sure, model="model:sure", auto_label_above=0.9, audit_share=0.25)
    assert summary["sure"] == 40 and summary["auto_labelled"] + summary["audit"] == 40
    assert 4 <= summary["audit"] <= 16  # about a quarter, drawn per task
    again = score_campaign(sessions, "demo", scorer=sure, model="model:sure", auto_label_above=0.9, audit_share=0.25)
    assert again["auto_labelled"] == 0 and again["audit"] == summary["audit"]  # the same draw on a second run


def test_plumb_collect_score_writes_a_real_reward_models_doubt_as_the_serving_order(
    sqlite_url, spread_reward_dir, capsys
):
    from collect.store import make_engine, session_factory, upgrade
    from plumb.cli import main as plumb
    from reward.score import load_reward_model, score_conversations
    from reward.uncertainty import doubt

    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_campaign(sessions, prompts=5, strategy="uncertainty")
    db = sqlite_url.removeprefix("sqlite:///")
    assert plumb(["collect", "score", "--campaign", "demo", "--db", db]) == 2  # no reward_model anywhere
    assert "names no reward_model" in capsys.readouterr().err
    assert plumb(["collect", "score", "--campaign", "demo", "--db", db, "--model_name_or_path", spread_reward_dir]) == 0

    with sessions() as session:
        tasks = list(session.scalars(select(Task).order_by(Task.id)))
        prompts = {t.id: session.get(Prompt, t.prompt_id).messages for t in tasks}
        texts = {
            cid: f"answer {prompt_of(prompts[t.id])} from {p}"
            for t in tasks
            for cid, p in zip(t.candidate_ids, ("sft", "dpo"))
        }
    model = load_reward_model(spread_reward_dir)
    sides = [
        score_conversations(
            model, [prompts[t.id] + [{"role": "assistant", "content": texts[t.candidate_ids[k]]}] for t in tasks]
        )
        for k in (0, 1)
    ]
    expected = doubt(sides[0] - sides[1])
    # Served most doubtful first, on doubts far enough apart that batching noise cannot reorder them
    gaps = np.diff(np.sort(expected))
    assert gaps.min() > 1e-4, expected
    by_priority = [t.id for t in sorted(tasks, key=lambda t: -t.priority)]
    assert by_priority == [tasks[i].id for i in np.argsort(-expected, kind="stable")]
    assert all(t.prelabel["model"] == f"model:{Path(spread_reward_dir).name}" for t in tasks)
    engine.dispose()


def test_an_answer_given_again_after_an_undo_was_given_having_seen_the_after_vote_pre_label(store):
    _, sessions = store
    seed_campaign(sessions, prompts=1, raters_per_task=1, max_raters_per_task=1, prelabels="after_vote")
    seed_raters(sessions, 1)
    score(sessions)
    view = lease_and_show(sessions, "rater0")
    judge(sessions, "rater0", view)  # then the page shows the model's guess
    with sessions.begin() as session:
        rater = rater_by_name(session=session, name="rater0")
        undo_last(session=session, campaign=campaign_by_name(session=session, name="demo"), rater=rater)
    judge(sessions, "rater0", lease_and_show(sessions, "rater0"), preference=-1)
    with sessions() as session:
        seen = session.scalars(
            select(Judgment.prelabel_seen).where(Judgment.retracted.is_(False)).order_by(Judgment.id)
        )
        assert list(seen) == [False, True]
