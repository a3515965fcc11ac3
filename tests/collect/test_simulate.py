"""Simulated raters: the noise model by hand, its rates through the real store, the command, and their provenance."""

import json
import math
import random
from collections import Counter

import datasets
import pytest
from scipy.stats import binom
from sqlalchemy import func, select

from collect.cli import main as collect_main
from collect.domain.answers import raters_disagree
from collect.domain.simulated_raters import (
    SimulatedRaterParams,
    agreement_probability,
    pairwise_answer,
    ranking_answer,
    rater_params,
    rating_answer,
    rating_edges,
)
from collect.export import main as export_main
from collect.import_prompts import main as import_main
from collect.init import main as init_main
from collect.quality import QualityArguments
from collect.quality import main as quality_main
from collect.services.campaign_import import parse_row
from collect.services.export.rows import ExportArguments
from collect.services.scheduling import next_task, submit_judgment
from collect.services.simulation import simulate
from collect.store import (
    Assignment,
    Candidate,
    Judgment,
    Rater,
    Task,
    authenticate,
    campaign_by_name,
    create_rater,
    live_judgments_query,
    make_engine,
    opened_store,
    rater_by_name,
    session_factory,
    upgrade,
)
from collect.store.raters import RaterError
from plumb.data import DataError
from tests.support.campaigns import seed_campaign, seed_raters

SIGMOID_1 = 1 / (1 + math.exp(-1))  # 0.7311: agreement when the gap equals the temperature


# The noise model, by hand


def answers(score_a, score_b, params, draws=1, seed=0):
    rng = random.Random(seed)
    return [pairwise_answer(score_a, score_b, params, rng) for _ in range(draws)]


def test_temperature_zero_follows_the_oracle_with_a_strength_from_the_gap():
    exact = SimulatedRaterParams(temperature=0, strength_step=1.0)
    assert all(a == {"preference": 1, "both_bad": False} for a in answers(1.0, 0.2, exact, draws=50))
    assert all(a["preference"] == -2 for a in answers(0.0, 1.5, exact, draws=50))  # ceil(1.5 / 1) = 2
    assert answers(4.0, 0.0, exact)[0]["preference"] == 3  # strength stops at 3
    assert answers(0.0, 0.5, SimulatedRaterParams(temperature=0, strength_step=0.25))[0]["preference"] == -2


def test_a_gap_equal_to_the_temperature_agrees_sigmoid_1_of_the_time():
    assert agreement_probability(0.5, 0.5) == pytest.approx(0.7310586, abs=1e-6)
    assert agreement_probability(-2.0, 2.0) == pytest.approx(SIGMOID_1)
    draws = answers(0.0, 0.5, SimulatedRaterParams(temperature=0.5), draws=4000)
    agreed = sum(a["preference"] < 0 for a in draws)  # B is the oracle's better answer
    low, high = binom.interval(0.999, 4000, SIGMOID_1)
    assert low <= agreed <= high


def test_ties_both_bad_and_position_bias():
    tie = SimulatedRaterParams(temperature=0, tie_margin=0.3)
    assert answers(1.0, 0.8, tie)[0] == {"preference": 0, "both_bad": False}  # |gap| 0.2 < 0.3
    assert answers(1.0, 0.6, tie)[0]["preference"] == 1  # |gap| 0.4: decisive
    assert answers(2.0, 2.0, SimulatedRaterParams(temperature=1))[0]["preference"] == 0  # equal scores: a tie
    bad = SimulatedRaterParams(temperature=0, both_bad_below=0.0)
    assert answers(-1.0, -0.5, bad)[0] == {"preference": None, "both_bad": True}
    assert answers(-1.0, 0.5, bad)[0]["preference"] == -2  # one of them is good enough
    lazy = SimulatedRaterParams(temperature=0, position_bias=1.0)
    assert all(a == {"preference": 1, "both_bad": False} for a in answers(-3.0, 3.0, lazy, draws=20))


def test_rankings_follow_plackett_luce_with_ties_and_position_bias():
    rng = random.Random(0)
    exact = SimulatedRaterParams(temperature=0)
    assert ranking_answer([0.0, 2.0, 1.0], exact, rng) == [3, 1, 2]
    assert ranking_answer([0.0, 2.0, 1.95], SimulatedRaterParams(temperature=0, tie_margin=0.1), rng) == [2, 1, 1]
    assert ranking_answer([0.0, 2.0, 1.0], SimulatedRaterParams(position_bias=1.0), rng) == [1, 2, 3]
    # K = 2 is the pairwise rule: the better one first with probability sigmoid(gap / temperature)
    firsts = sum(ranking_answer([1.0, 0.0], SimulatedRaterParams(temperature=1.0), rng) == [1, 2] for _ in range(4000))
    low, high = binom.interval(0.999, 4000, SIGMOID_1)
    assert low <= firsts <= high


def test_ratings_are_quantile_bins_of_the_oracle_score():
    edges = rating_edges(list(range(100)), 5)
    assert edges == pytest.approx([19.8, 39.6, 59.4, 79.2])
    assert rating_answer([5.0, 50.0, 95.0], edges, SimulatedRaterParams(temperature=0), random.Random(0)) == [1, 3, 5]


def test_each_rater_draws_its_own_parameters_deterministically():
    base = SimulatedRaterParams(temperature=1.0, position_bias=0.2, rater_spread=0.5)
    assert rater_params(SimulatedRaterParams(temperature=1.0), "sim-1", 0) == SimulatedRaterParams(temperature=1.0)
    ann, ann_again, bob = (rater_params(base, name, seed) for name, seed in (("ann", 0), ("ann", 0), ("bob", 0)))
    assert ann == ann_again and ann != bob and ann != rater_params(base, "ann", 1)
    assert ann.temperature > 0 and 0 < ann.position_bias < 1
    assert rater_params(SimulatedRaterParams(position_bias=0.0, rater_spread=2.0), "ann", 0).position_bias == 0.0
    with pytest.raises(ValueError, match="position_bias"):
        SimulatedRaterParams(position_bias=1.5)


# Observed rates through the real store fall within binomial intervals of the parameters

# Score of "dpo" minus score of "sft": the first four are ties (within the tie margin), the others have a side.
GAPS = (0.0, 0.1, -0.1, 0.2, 1.0, -1.0, 2.0, -2.0, 4.0, -4.0)
# A high temperature and position bias, so that a formula off by a fraction shows (see the module's notes).
STUDY = SimulatedRaterParams(temperature=3.0, position_bias=0.25, tie_margin=0.25, both_bad_below=-1.0)


def known_score(content: str) -> float:
    """The study oracle: "answer I from POLICY" scores base(I) for sft and base(I) + GAPS[I % 10] for dpo."""
    _, index, _, policy = content.split()
    base = -3.0 if int(index) % 7 == 0 else 1.0  # every seventh prompt has two bad answers, unless dpo's gap saves it
    return base + (GAPS[int(index) % len(GAPS)] if policy == "dpo" else 0.0)


def study_oracle(conversations):
    return [known_score(conversation[-1]["content"]) for conversation in conversations]


def outcome_probabilities(a: float, b: float, params: SimulatedRaterParams) -> dict:
    """P(A), P(B), P(tie), P(both bad) of one answer to a pair shown as (A, B), from the parameters' definitions."""
    unbiased = {"A": 0.0, "B": 0.0, "tie": 0.0, "both_bad": 0.0}
    if params.both_bad_below is not None and a < params.both_bad_below and b < params.both_bad_below:
        unbiased["both_bad"] = 1.0
    elif abs(a - b) < params.tie_margin:
        unbiased["tie"] = 1.0
    else:
        agree = 1 / (1 + math.exp(-abs(a - b) / params.temperature))
        unbiased["A"], unbiased["B"] = (agree, 1 - agree) if a > b else (1 - agree, agree)
    lazy = params.position_bias  # picks A whatever the scores
    return {key: (1 - lazy) * p + (lazy if key == "A" else 0.0) for key, p in unbiased.items()}


def shown_answers(sessions) -> list[tuple[float, float, str]]:
    """(score of A, score of B, "A" | "B" | "tie" | "both_bad") of every live judgment, in the order shown."""
    with sessions() as session:
        content = {c.id: c.completion[0]["content"] for c in session.scalars(select(Candidate))}
        rows = session.execute(
            live_judgments_query(1)
            .add_columns(Assignment.candidate_order, Task.candidate_ids)
            .join(Assignment, Assignment.id == Judgment.assignment_id)
        ).all()
    shown = []
    for judgment, order, candidate_ids in rows:
        a, b = (known_score(content[candidate_ids[k]]) for k in order)
        if judgment.both_bad:
            shown.append((a, b, "both_bad"))
            continue
        preference = judgment.preference if order[0] == 0 else -judgment.preference  # canonical -> as shown
        choice = "A" if preference > 0 else "B" if preference < 0 else "tie"
        shown.append((a, b, choice))
    return shown


def assert_within_binomial_interval(hits: int, n: int, expected_rate: float, what: str):
    # The expected rate is a mean of per-judgment probabilities: the count is Poisson-binomial, whose variance is at
    # most the binomial's, so the binomial interval is the conservative one.
    low, high = binom.interval(0.999, n, expected_rate)
    assert low <= hits <= high, f"{what}: observed {hits}/{n} = {hits / n:.3f}, expected {expected_rate:.3f}"


def test_observed_agreement_position_bias_and_tie_rate_match_the_parameters(sqlite_url):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_campaign(sessions, prompts=480, raters_per_task=1, max_raters_per_task=1)
    summary = simulate(sessions, "demo", raters=2, oracle=study_oracle, params=STUDY, seed=7, progress=False)
    shown = shown_answers(sessions)
    assert summary["judgments"] == len(shown) == 480
    probabilities = [outcome_probabilities(a, b, STUDY) for a, b, _ in shown]

    ties = sum(choice == "tie" for _, _, choice in shown)
    assert_within_binomial_interval(ties, len(shown), sum(p["tie"] for p in probabilities) / len(shown), "tie rate")
    both_bad = sum(choice == "both_bad" for _, _, choice in shown)
    assert both_bad > 0 and summary["both_bad_rate"] == round(both_bad / len(shown), 4)
    assert_within_binomial_interval(
        both_bad, len(shown), sum(p["both_bad"] for p in probabilities) / len(shown), "both-bad rate"
    )

    # Position bias, directly: where the oracle takes no side (a tie, or both bad) only a lazy click picks one, and
    # it picks A
    sideless = [choice for (_, _, choice), p in zip(shown, probabilities) if p["tie"] + p["both_bad"] > 0]
    assert "B" not in sideless
    assert_within_binomial_interval(sideless.count("A"), len(sideless), STUDY.position_bias, "position bias")

    decisive = [(a, b, choice, p) for (a, b, choice), p in zip(shown, probabilities) if choice in ("A", "B")]
    chose_a = sum(choice == "A" for _, _, choice, _ in decisive)
    expected_a = sum(p["A"] / (p["A"] + p["B"]) for *_, p in decisive) / len(decisive)
    assert_within_binomial_interval(chose_a, len(decisive), expected_a, "first shown chosen")

    signed = [(a, b, choice, p) for a, b, choice, p in decisive if a != b]
    agreed = sum((choice == "A") == (a > b) for a, b, choice, _ in signed)
    expected_agreement = sum(p["A" if a > b else "B"] / (p["A"] + p["B"]) for a, b, _, p in signed) / len(signed)
    assert_within_binomial_interval(agreed, len(signed), expected_agreement, "agreement with the oracle")

    # The service's own summary counts the same answers
    assert summary["tie_rate"] == round(ties / len(shown), 4)
    assert summary["first_shown_rate"] == round(chose_a / len(decisive), 4)
    assert summary["oracle_agreement"] == round(agreed / len(signed), 4)
    engine.dispose()


# Through the scheduler: overlap, gold tasks, resuming


def test_simulated_raters_respect_overlap_and_grow_it_only_on_disagreement(store):
    _, sessions = store
    seed_campaign(sessions, prompts=12, gold=2, gold_share=0.2, raters_per_task=2, max_raters_per_task=3)
    noisy = SimulatedRaterParams(temperature=5.0)  # close to a coin: the raters often disagree
    first = simulate(sessions, "demo", raters=3, oracle=study_oracle, params=noisy, max_judgments=5, progress=False)
    rest = simulate(sessions, "demo", raters=3, oracle=study_oracle, params=noisy, progress=False)
    assert first["judgments"] == 5 and rest["judgments"] > 0
    assert simulate(sessions, "demo", raters=3, oracle=study_oracle, params=noisy, progress=False)["judgments"] == 0

    with sessions() as session:
        live = session.scalars(live_judgments_query(1)).all()
        tasks = {task.id: task for task in session.scalars(select(Task))}
        raters = session.scalars(select(Rater)).all()
    assert first["judgments"] + rest["judgments"] == len(live)
    assert len({(j.task_id, j.rater_id) for j in live}) == len(live)  # nobody judged a task twice
    assert {r.name: (r.kind, r.password_hash) for r in raters} == {f"sim-{i}": ("simulated", None) for i in (1, 2, 3)}
    by_task = {task_id: [j for j in live if j.task_id == task_id] for task_id in tasks}
    grown = 0
    for task_id, judgments in by_task.items():
        if tasks[task_id].is_gold:
            assert len(judgments) == 3  # every rater takes each gold check once
            continue
        assert 2 <= len(judgments) <= tasks[task_id].target_overlap <= 3
        if len(judgments) == 3:
            grown += 1
            assert raters_disagree(sorted(judgments, key=lambda j: j.id)[:2])
    assert grown > 0  # with raters this noisy, some task needed a third opinion


def policy_oracle(conversations):
    """Scores by policy: a 2, b 1, c 0 (the content is "answer I from POLICY")."""
    return [{"a": 2.0, "b": 1.0, "c": 0.0}[conversation[-1]["content"].split()[-1]] for conversation in conversations]


@pytest.mark.parametrize("kind", ["ranking", "rating"])
def test_rankings_and_ratings_follow_the_oracle_in_the_store(sqlite_url, kind):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_campaign(sessions, kind=kind, prompts=5, policies=("a", "b", "c"), raters_per_task=2, rating_points=3)
    summary = simulate(
        sessions, "demo", raters=2, oracle=policy_oracle, params=SimulatedRaterParams(temperature=0), progress=False
    )
    with sessions() as session:
        answers = [j.ranks if kind == "ranking" else j.ratings for j in session.scalars(live_judgments_query(1))]
    assert summary["judgments"] == len(answers) == 10
    # Canonical order is a, b, c: ranks 1, 2, 3; ratings are the tercile of the score, 3 (best) to 1
    assert answers == ([[1, 2, 3]] if kind == "ranking" else [[3, 2, 1]]) * 10
    assert summary["oracle_agreement"] == (1.0 if kind == "ranking" else None)
    engine.dispose()


def test_a_simulated_rater_has_no_password_and_a_kind_is_checked(store):
    _, sessions = store
    with sessions.begin() as session:
        create_rater(session=session, name="bot", kind="simulated")
        with pytest.raises(RaterError, match="no password"):
            create_rater(session=session, name="bot2", kind="simulated", password="secret")
        with pytest.raises(RaterError, match="unknown rater kind 'robot'"):
            create_rater(session=session, name="bot3", kind="robot")
        assert authenticate(session=session, name="bot", password="") is None
        assert create_rater(session=session, name="ann")[0].kind == "human"
    seed_campaign(sessions, prompts=2)
    with sessions.begin() as session:
        create_rater(session=session, name="sim-1")
    with pytest.raises(RaterError, match="'sim-1' exists and is not simulated"):
        simulate(sessions, "demo", raters=1, oracle=study_oracle, params=STUDY, progress=False)


def test_a_database_at_0002_upgrades_and_its_raters_are_people(sqlite_url):
    from alembic import command

    from collect.store.engine import alembic_config

    engine = make_engine(sqlite_url)
    command.upgrade(alembic_config(engine), "0002")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO raters (name, role, active, created_at) VALUES ('ann', 'rater', 1, '2026-01-01')"
        )
    assert upgrade(engine) == "0007"
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT name, kind FROM raters").one() == ("ann", "human")
    engine.dispose()


# Provenance: exports and the quality report say which labels were simulated


def test_exports_and_the_quality_report_say_which_judgments_were_simulated(sqlite_url, tmp_path, capsys):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    seed_campaign(sessions, prompts=4, raters_per_task=1, max_raters_per_task=1)
    (person,) = seed_raters(sessions, 1)
    with sessions.begin() as session:  # a person judges one task first, through the same scheduler
        rater = rater_by_name(session=session, name=person)
        assignment = next_task(session=session, campaign=campaign_by_name(session=session, name="demo"), rater=rater)
        submit_judgment(session=session, rater=rater, assignment_id=assignment.id, preference=2)
        human_task = assignment.task_id
    simulate(
        sessions, "demo", raters=1, oracle=study_oracle, params=SimulatedRaterParams(temperature=0), progress=False
    )
    engine.dispose()

    output = tmp_path / "pairwise"
    summary = export_main(ExportArguments(campaign="demo", db=sqlite_url, output_dir=str(output), test_size=0))
    rows = datasets.load_dataset(str(output), split="train").to_list()
    assert summary["judgments_by_rater_kind"] == {"human": 1, "simulated": 3, "model": 0, "imported": 0}
    assert {row["meta"]["task_id"]: row["meta"]["simulated"] for row in rows} == {
        task_id: task_id != human_task for task_id in range(1, 5)
    }
    assert "3 of 4 by simulated raters" in (output / "README.md").read_text()

    judgments = tmp_path / "judgments"
    export_main(ExportArguments(campaign="demo", db=sqlite_url, format="judgments", output_dir=str(judgments)))
    report = quality_main(
        QualityArguments(judgments=str(judgments), output_dir=str(tmp_path / "quality"), min_shared_items=1)
    )
    assert report["simulated_judgments"] == 3
    assert "simulated judgments          3" in capsys.readouterr().out


# The command: a dataset's own labels, or a reward model, as the oracle


def import_scored_campaign(tmp_path, *, scores=True) -> str:
    """A SQLite file with a campaign of 6 pairwise tasks whose candidates carry oracle scores; returns its path."""
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    (tmp_path / "campaign.yaml").write_text("name: scored\nraters_per_task: 2\n")
    rows = [
        {
            "prompt": f"question {i}",
            "prompt_id": f"q{i}",
            "candidates": [
                {"policy": "a", "completion": f"answer a{i}", **({"oracle_score": 1.0 + i} if scores else {})},
                {"policy": "b", "completion": f"answer b{i}", **({"oracle_score": 0.5 * i} if scores else {})},
            ],
        }
        for i in range(6)
    ]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    import_main(str(tmp_path / "campaign.yaml"), source=str(tmp_path / "rows.jsonl"), db=db)
    return db


def run_simulate(*args) -> int:
    return collect_main(["simulate", "--campaign", "scored", *args])


def test_imported_oracle_scores_drive_the_command(tmp_path, capsys):
    db = import_scored_campaign(tmp_path)
    with opened_store(db) as sessions, sessions() as session:
        stored = sorted(c.settings["oracle_score"] for c in session.scalars(select(Candidate)))
    assert stored == sorted([1.0 + i for i in range(6)] + [0.5 * i for i in range(6)])
    assert run_simulate("--raters", "2", "--oracle", "dataset", "--temperature", "0", "--seed", "3", "--db", db) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["raters"] == ["sim-1", "sim-2"] and summary["judgments"] == 12
    assert summary["oracle_agreement"] == 1.0 and summary["tie_rate"] == 0.0  # a always scores higher than b


def test_a_bad_oracle_score_stops_the_import_and_a_missing_one_the_command(tmp_path, capsys):
    with pytest.raises(DataError, match="entry 1 oracle_score must be a number"):
        parse_row(
            {
                "prompt": "q",
                "candidates": [
                    {"policy": "a", "completion": "x", "oracle_score": 1},
                    {"policy": "b", "completion": "y", "oracle_score": "high"},
                ],
            }
        )
    db = import_scored_campaign(tmp_path, scores=False)
    assert run_simulate("--oracle", "dataset", "--db", db) == 2
    assert "have no oracle_score" in capsys.readouterr().err


def test_a_reward_model_directory_is_an_oracle(tmp_path, tiny_reward_dir, capsys):
    db = import_scored_campaign(tmp_path)
    ensemble = f"{tiny_reward_dir},{tiny_reward_dir}"  # an ensemble's mean: the same scores here
    assert run_simulate("--raters", "3", "--oracle", ensemble, "--temperature", "0", "--db", db) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["judgments"] >= 12 and summary["oracle_agreement"] == 1.0
    with opened_store(db) as sessions, sessions() as session:
        kinds = Counter(session.scalars(select(Rater.kind).join(Judgment, Judgment.rater_id == Rater.id)))
        assert kinds == {"simulated": summary["judgments"]}
        assert session.scalar(select(func.count(Judgment.id))) == summary["judgments"]
