"""Data hygiene through the real commands on a real SQLite store: `plumb collect import` with a campaign's
`hygiene` block (real MiniLM embeddings and language detector), and `plumb collect clean` on a stored campaign,
where nothing a rater judged or holds is dropped and cleaning twice changes nothing."""

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collect import clean, import_prompts
from collect.app.review_tab import candidates_markdown
from collect.init import main as init_main
from collect.services.adjudication import next_review, submit_adjudication
from collect.services.hygiene import flagged_tasks
from collect.services.scheduling import next_task, skip_task
from collect.store import Candidate, Judgment, Prompt, Task, campaign_by_name, create_rater, open_store
from plumb.config import ConfigError
from tests.support.campaigns import judge

CLEAN_FLAGS = ["--duplicate_prompt", "drop", "--near_duplicate_prompt", "off", "--length_outlier", "off"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def pair(prompt_id, prompt, *answers, **extra):
    candidates = [{"policy": f"p{i}", "completion": text} for i, text in enumerate(answers)]
    return {"prompt_id": prompt_id, "prompt": prompt, "candidates": candidates, **extra}


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def stored(db, campaign: str):
    """{prompt_id: (completions, [(task id, source)])} of the campaign."""
    with open_store(db)() as session:
        found = campaign_by_name(session=session, name=campaign)
        out = {}
        for prompt in session.scalars(select(Prompt).where(Prompt.campaign_id == found.id).order_by(Prompt.id)):
            answers = session.scalars(select(Candidate).where(Candidate.prompt_id == prompt.id).order_by(Candidate.id))
            tasks = session.execute(select(Task.id, Task.source).where(Task.prompt_id == prompt.id).order_by(Task.id))
            out[prompt.external_id] = ([c.completion[0]["content"] for c in answers], [tuple(t) for t in tasks])
        return out


def test_import_drops_flags_and_keeps_as_the_campaign_says_and_reports_beside_it(tmp_path, capsys):
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(
        "name: tidy\nkind: pairwise\nraters_per_task: 1\nmax_raters_per_task: 1\nlanguage: en\n"
        "hygiene:\n  duplicate_prompt: drop\n  near_duplicate_threshold: 0.9\n  length_outlier: off\n"
    )
    source = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            pair("q0", "What is the capital of France?", "Paris is the capital.", "paris is  the capital.", "Lyon."),
            pair("q1", "what is the capital of  France?", "Paris.", "Nice."),  # a duplicate prompt: dropped
            pair("q2", "   ", "Hm.", "Ok."),  # empty: dropped
            pair("q3", "How do I bake sourdough bread at home?", "Mix flour, water and starter; bake.", "Buy it."),
            pair("q4", "How can I bake sourdough bread at home?", "Use a starter.", "Ask a baker."),  # near duplicate
            # Two identical answers, but a rater judged them: flagged, not dropped.
            pair(
                "q5",
                "Which planet is the largest?",
                "Jupiter.",
                "Jupiter.",
                judgments=[{"rater": "ann", "ranks": [1, 2]}],
            ),
            pair("q6", "Wie backe ich zu Hause ein gutes Sauerteigbrot?", "With a starter.", "In an oven."),
        ],
    )
    assert import_prompts.cli(["--campaign", str(campaign), "--source", source, "--db", db], prog="import") == 0
    out, err = capsys.readouterr()
    counts = last_json(out)
    assert (counts["rows"], counts["prompts"], counts["candidates"], counts["tasks"]) == (5, 5, 10, 5)
    rules = counts["hygiene"]["rules"]
    found = {
        rule: (c["found"], c["kept"], c["flagged"], c["dropped"], c["flagged_instead_of_dropped"])
        for rule, c in rules.items()
    }
    assert found == {
        "empty_or_broken": (1, 0, 0, 1, 0),
        "duplicate_prompt": (1, 0, 0, 1, 0),
        "near_duplicate_prompt": (1, 0, 1, 0, 0),
        "duplicate_candidate": (0, 0, 0, 0, 0),
        "identical_candidates": (2, 0, 0, 1, 1),
        "length_outlier": (0, 0, 0, 0, 0),
        "wrong_language": (1, 0, 1, 0, 0),
    }
    assert (counts["hygiene"]["dropped_rows"], counts["hygiene"]["dropped_candidates"]) == (2, 1)
    assert "identical_candidates" in err and "flag not drop" in err  # the table, on stderr

    # The report (JSON) lies beside the campaign YAML and names every finding with its row.
    report = json.loads(Path(counts["hygiene_report"]).read_text())
    assert report["mode"] == "import" and report["source"] == source and report["rows"] == 7
    assert {(f["rule"], f["where"], f["candidate"]) for f in report["findings"]} == {
        ("empty_or_broken", "row 2 (prompt_id q2)", None),
        ("duplicate_prompt", "row 1 (prompt_id q1)", None),
        ("near_duplicate_prompt", "row 4 (prompt_id q4)", None),
        ("identical_candidates", "row 0 (prompt_id q0)", 1),
        ("identical_candidates", "row 5 (prompt_id q5)", 1),
        ("wrong_language", "row 6 (prompt_id q6)", None),
    }
    assert Path(counts["hygiene_report"]).parent == tmp_path.resolve()

    held = stored(db, "tidy")
    assert list(held) == ["q0", "q3", "q4", "q5", "q6"]
    assert held["q0"][0] == ["Paris is the capital.", "Lyon."]  # the later of the identical two left out
    assert held["q5"][0] == ["Jupiter.", "Jupiter."]  # judged: nothing taken away
    with open_store(db)() as session:
        tidy = campaign_by_name(session=session, name="tidy")
        flags = flagged_tasks(session, tidy)
        assert session.scalar(select(func.count(Judgment.id))) == 1
    task_of = {pid: tasks[0][0] for pid, (_, tasks) in held.items()}
    assert flags == {
        task_of["q4"]: ["near_duplicate_prompt"],
        task_of["q5"]: ["identical_candidates"],
        task_of["q6"]: ["wrong_language"],
    }

    # Flagged for reviewers: a flagged task joins the review queue once judged, with its rules shown, until decided.
    # q5 was judged on import, q4 by bob now; q6 is flagged but unjudged, q3 judged but neither flagged nor disputed.
    sessions = open_store(db)
    with sessions.begin() as session:
        create_rater(session=session, name="rev", role="reviewer")
        create_rater(session=session, name="bob")
    judge(sessions, "bob", task_of["q4"], preference=1)
    judge(sessions, "bob", task_of["q3"], preference=-1)
    page = next_review(sessions, campaign="tidy", reviewer_name="rev")
    assert page.waiting == 2 and page.item.task_id == task_of["q5"] and page.item.hygiene == ["identical_candidates"]
    assert "**Flagged on import by data hygiene:** `identical_candidates`" in candidates_markdown(page.item)
    page = submit_adjudication(
        sessions, campaign="tidy", reviewer_name="rev", task_id=task_of["q5"], choice="Tie", note="same answer"
    )
    assert page.waiting == 1 and page.item.task_id == task_of["q4"] and page.item.hygiene == ["near_duplicate_prompt"]


def seed_unclean_campaign(tmp_path) -> str:
    """A stored campaign imported without hygiene: tasks 1..7 in this order, task 6 judged by ann."""
    db = str(tmp_path / "c.sqlite")
    init_main(db)
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text("name: messy\nkind: pairwise\nraters_per_task: 1\nmax_raters_per_task: 1\n")
    rows = [
        pair("a", "What is 2 + 2?", "4", "4"),  # task 1: identical answers; leased to a rater below
        pair(
            "b", "Name a primary colour.", "Red.", "Blue.", "red."
        ),  # tasks 2 (red, blue), 3 (red, red), 4 (blue, red)
        pair("c", "name a primary  colour.", "Yellow.", "Green."),  # task 5: a duplicate prompt
        pair("d", "Is water wet?", "Yes.", "yes.", judgments=[{"rater": "ann", "ranks": [1, 2]}]),  # task 6, judged
        pair("e", "Why is the sky blue?", "Rayleigh scattering of sunlight.", "Because it is."),  # task 7
    ]
    source = write_jsonl(tmp_path / "rows.jsonl", rows)
    assert import_prompts.main(str(campaign), source=source, db=db)["tasks"] == 7
    return db


def served(db, rater: str) -> list[int]:
    """The tasks the scheduler offers a new rater, each skipped in turn until none is left."""
    sessions = open_store(db)
    ids = []
    with sessions.begin() as session:
        person = create_rater(session=session, name=rater)[0]
        messy = campaign_by_name(session=session, name="messy")
        while (assignment := next_task(session=session, campaign=messy, rater=person)) is not None:
            ids.append(assignment.task_id)
            skip_task(session=session, rater=person, assignment_id=assignment.id)
    return sorted(ids)


def test_clean_takes_tasks_out_of_the_pool_but_flags_judged_and_leased_ones_and_is_idempotent(tmp_path, capsys):
    db = seed_unclean_campaign(tmp_path)
    assert served(db, "before") == [1, 2, 3, 4, 5, 7]  # task 6 is full: judged once, overlap 1
    sessions = open_store(db)
    with sessions.begin() as session:
        bea = create_rater(session=session, name="bea")[0]
        lease = next_task(session=session, campaign=campaign_by_name(session=session, name="messy"), rater=bea)
        assert lease.task_id == 1  # fewest judgments, then the lowest id

    out_dir = tmp_path / "reports"
    argv = ["--db", db, "--campaign", "messy", "--output_dir", str(out_dir), *CLEAN_FLAGS]
    assert clean.cli(argv, prog="plumb collect clean") == 0
    out, _ = capsys.readouterr()
    summary = last_json(out)
    assert "identical_candidates" in out and summary["totals"] == {
        "kept": 0,
        "flagged": 0,
        "dropped": 3,
        "flagged_instead_of_dropped": 2,
    }
    report = json.loads(Path(summary["report"]).read_text())
    assert report["rules"]["identical_candidates"]["found"] == 3  # in a, b and d
    assert (report["rules"]["identical_candidates"]["dropped"], report["rules"]["duplicate_prompt"]["dropped"]) == (
        2,
        1,
    )
    assert report["rules"]["identical_candidates"]["flagged_instead_of_dropped"] == 2 and report["new_flags"] == 2

    # Nothing deleted: every task and the judgment are still there; dropped tasks only left the pool.
    held = stored(db, "messy")
    sources = dict(task for _, tasks in held.values() for task in tasks)
    assert sources == {1: "pool", 2: "pool", 3: "dropped", 4: "dropped", 5: "dropped", 6: "pool", 7: "pool"}
    with sessions() as session:
        messy = campaign_by_name(session=session, name="messy")
        assert session.scalar(select(func.count(Judgment.id))) == 1
        assert flagged_tasks(session, messy) == {1: ["identical_candidates"], 6: ["identical_candidates"]}
    assert served(db, "after") == [2, 7]  # task 1 is bea's, task 6 full, 3 4 5 out of the pool

    # Twice: the same flags, nothing more dropped, no flag recorded again.
    main_args, overrides = clean.config_types()
    args = main_args(campaign="messy", db=db, output_dir=str(out_dir))
    again, _ = clean.main(args, overrides(duplicate_prompt="drop", near_duplicate_prompt="off", length_outlier="off"))
    assert again["totals"]["dropped"] == 0 and again["new_flags"] == 0
    assert again["totals"]["flagged_instead_of_dropped"] == 2


def test_clean_refuses_a_bad_setting_naming_the_key(tmp_path):
    db = seed_unclean_campaign(tmp_path)
    for flags, key in ((["--duplicate_prompt", "remove"], "duplicate_prompt"), (["--examples", "-2"], "examples")):
        with pytest.raises(ConfigError, match=f"key '{key}'|--{key}"):
            clean.cli(["--db", db, "--campaign", "messy", *flags], prog="plumb collect clean")
    with pytest.raises(ConfigError, match="messy.*key 'language': 'xx' is not a language code the detector knows"):
        clean.cli(["--db", db, "--campaign", "messy", "--language", "xx", *CLEAN_FLAGS], prog="plumb collect clean")
