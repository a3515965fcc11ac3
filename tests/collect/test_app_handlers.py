"""The rater app's handlers as plain functions on a real SQLite store: judge, skip, undo, progress, roles, escaping,
pre-labels as the campaign shows them."""

import asyncio
import re
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select

from collect.app import handlers
from collect.app.display import escaped_chat, overview_markdown, progress_markdown
from collect.app.keys import CHOICE_KEYS, action_of, button_label, keyboard_script
from collect.app.login import LoginThrottle, password_check
from collect.services.prelabels import score_campaign
from collect.store import Assignment, Judgment, Task
from tests.support.campaigns import PASSWORDS, add_attack_task, judge, make_store


@pytest.fixture
def sessions(sqlite_url):
    """Sessions on a SQLite store: a 3-task pairwise campaign 'demo', raters ana and ben, reviewer rev."""
    engine, sessions, _ = make_store(sqlite_url)
    yield sessions
    engine.dispose()


def stored_judgments(sessions) -> list[Judgment]:
    with sessions.begin() as session:
        return session.scalars(select(Judgment).order_by(Judgment.id)).all()


def test_login_checks_the_argon2_password_of_an_active_rater(sessions):
    check = password_check(sessions, LoginThrottle(max_failures=5))
    assert asyncio.run(check("ana", PASSWORDS["ana"]))
    assert not asyncio.run(check("ana", PASSWORDS["ben"]))
    assert not asyncio.run(check("nobody", PASSWORDS["ana"]))


def test_a_judgment_is_stored_in_the_task_order_with_its_time_rationale_and_flags(sessions):
    page = handlers.show_next(sessions, campaign="demo", rater_name="ana")
    assert page.assignment_id is not None and len(page.responses) == 2
    assert page.progress == {"today": 0, "campaign": 0, "arena": 0, "left": 3}
    after = handlers.judge(
        sessions,
        campaign="demo",
        rater_name="ana",
        assignment_id=page.assignment_id,
        choice="A better",
        rationale="  clearer  ",
        flags=["unsafe"],
        seconds_spent=4.5,
    )
    assert after.assignment_id not in (None, page.assignment_id)
    assert after.progress == {"today": 1, "campaign": 1, "arena": 0, "left": 2}
    (judgment,) = stored_judgments(sessions)
    assert (judgment.rationale, judgment.flags, judgment.seconds_spent) == ("clearer", ["unsafe"], 4.5)
    # "A" is whichever candidate was shown first: stored positive only when that is the task's first candidate.
    first_shown = page.responses[0]
    assert (judgment.preference == 2) == first_shown.endswith("from sft")
    assert abs(judgment.preference) == 2


def test_both_bad_and_a_refused_answer_keep_the_task_with_the_reason(sessions):
    page = handlers.show_next(sessions, campaign="demo", rater_name="ana")
    refused = handlers.judge(
        sessions,
        campaign="demo",
        rater_name="ana",
        assignment_id=page.assignment_id,
        choice="Both bad",
        flags=["not offered"],
    )
    assert refused.assignment_id == page.assignment_id and "unknown flag" in refused.message
    handlers.judge(sessions, campaign="demo", rater_name="ana", assignment_id=page.assignment_id, choice="Both bad")
    (judgment,) = stored_judgments(sessions)
    assert judgment.both_bad and judgment.preference is None


def test_undo_supersedes_the_last_judgment_and_shows_its_task_again(sessions):
    page = handlers.show_next(sessions, campaign="demo", rater_name="ana")
    handlers.judge(sessions, campaign="demo", rater_name="ana", assignment_id=page.assignment_id, choice="Tie")
    back = handlers.undo(sessions, campaign="demo", rater_name="ana")
    assert back.assignment_id == page.assignment_id and back.progress["campaign"] == 0
    handlers.judge(
        sessions, campaign="demo", rater_name="ana", assignment_id=back.assignment_id, choice="B much better"
    )
    first, retraction, again = stored_judgments(sessions)
    assert retraction.retracted and retraction.supersedes_id == first.id
    assert again.supersedes_id == retraction.id and abs(again.preference) == 3
    assert handlers.undo(sessions, campaign="demo", rater_name="ben").message == "nothing to undo"


def test_skip_passes_and_the_pool_runs_out(sessions):
    page = handlers.show_next(sessions, campaign="demo", rater_name="ana")
    seen = {page.assignment_id}
    page = handlers.skip(sessions, campaign="demo", rater_name="ana", assignment_id=page.assignment_id)
    while page.assignment_id is not None:
        seen.add(page.assignment_id)
        page = handlers.judge(
            sessions, campaign="demo", rater_name="ana", assignment_id=page.assignment_id, choice="Tie"
        )
    assert len(seen) == 3 and "Nothing left" in page.message
    # The skipped task still needs a judgment, but not from her: nothing is left for her.
    assert page.progress == {"today": 2, "campaign": 2, "arena": 0, "left": 0}


def test_undo_right_after_a_skip_brings_the_skipped_task_back_then_the_judgment_before_it(sessions):
    first = handlers.show_next(sessions, campaign="demo", rater_name="ana")
    judged = handlers.judge(
        sessions, campaign="demo", rater_name="ana", assignment_id=first.assignment_id, choice="Tie"
    )
    after_skip = handlers.skip(sessions, campaign="demo", rater_name="ana", assignment_id=judged.assignment_id)
    back = handlers.undo(sessions, campaign="demo", rater_name="ana")
    assert back.assignment_id == judged.assignment_id and back.progress["campaign"] == 1  # the skip, not the judgment
    before = handlers.undo(sessions, campaign="demo", rater_name="ana")  # again: the judgment before it
    assert before.assignment_id == first.assignment_id and before.progress["campaign"] == 0
    # Answered in turn, the items come back the way the rater went over them, then the one the skip led to.
    order = [before.assignment_id]
    page = before
    for _ in range(3):
        page = handlers.judge(
            sessions, campaign="demo", rater_name="ana", assignment_id=page.assignment_id, choice="Tie"
        )
        order.append(page.assignment_id)
    assert order == [first.assignment_id, judged.assignment_id, after_skip.assignment_id, None]


def test_a_skip_past_the_undo_window_stays_skipped(sessions):
    page = handlers.show_next(sessions, campaign="demo", rater_name="ana")
    handlers.skip(sessions, campaign="demo", rater_name="ana", assignment_id=page.assignment_id)
    with sessions.begin() as session:
        skipped = session.get(Assignment, page.assignment_id)
        skipped.expires_at -= timedelta(minutes=11)  # the demo store's campaign keeps undo for 10 minutes
    assert (
        "your last skip is more than 10 minutes old"
        in handlers.undo(sessions, campaign="demo", rater_name="ana").message
    )


def test_progress_counts_what_is_left_for_this_rater_and_arena_votes_apart(sqlite_url):
    engine, sessions, _ = make_store(sqlite_url, prompts=3, raters_per_task=2, max_raters_per_task=2)
    page = handlers.show_next(sessions, campaign="demo", rater_name="ana")
    page = handlers.judge(sessions, campaign="demo", rater_name="ana", assignment_id=page.assignment_id, choice="Tie")
    assert page.progress == {"today": 1, "campaign": 1, "arena": 0, "left": 2}  # one of three tasks done by her
    assert handlers.show_next(sessions, campaign="demo", rater_name="ben").progress["left"] == 3  # all still his
    with sessions.begin() as session:  # one of the tasks becomes a battle ana voted in
        battle = session.scalars(select(Task).order_by(Task.id.desc())).first()
        battle.source = "arena"
    judge(sessions, "ana", battle.id, preference=1)
    page = handlers.show_next(sessions, campaign="demo", rater_name="ana")
    assert page.progress == {"today": 1, "campaign": 1, "arena": 1, "left": 1}
    assert progress_markdown(page.progress) == (
        "**1** judged today · **1** in this campaign · **1** left for you · 1 arena vote"
    )
    engine.dispose()


def test_a_rater_cannot_answer_another_raters_assignment(sessions):
    ana = handlers.show_next(sessions, campaign="demo", rater_name="ana")
    ben = handlers.judge(sessions, campaign="demo", rater_name="ben", assignment_id=ana.assignment_id, choice="Tie")
    assert "not one of yours" in ben.message
    assert stored_judgments(sessions) == []


def test_only_reviewers_and_admins_see_the_campaign_overview(sessions):
    page = handlers.show_next(sessions, campaign="demo", rater_name="ana")
    handlers.judge(sessions, campaign="demo", rater_name="ana", assignment_id=page.assignment_id, choice="Tie")
    with pytest.raises(PermissionError):
        handlers.campaign_overview(sessions, campaign="demo", rater_name="ana")
    stats, per_rater = handlers.campaign_overview(sessions, campaign="demo", rater_name="rev")
    assert stats["judgments"] == 1 and per_rater == {"ana": 1}
    assert "| ana | 1 |" in overview_markdown(stats, per_rater)
    assert handlers.role_of(sessions, "rev") == "reviewer"


def test_model_html_reaches_the_page_escaped(sessions):
    attack = '<img src=x onerror="alert(1)"> <script>alert(2)</script> [x](javascript:alert(3))'
    add_attack_task(sessions, attack)
    page = handlers.show_next(sessions, campaign="demo", rater_name="ana")
    while page.prompt[0]["content"] != escaped_chat([{"content": attack}])[0]["content"]:
        page = handlers.skip(sessions, campaign="demo", rater_name="ana", assignment_id=page.assignment_id)
    assert not re.search(r"<[A-Za-z/]", page.prompt[0]["content"]) and "<\u200bimg src=x" in page.prompt[0]["content"]
    assert page.responses == [attack, attack]  # as stored: the tab passes them through `safe_markdown`


def test_every_answer_has_a_key_on_its_button_and_in_the_script():
    assert [key for key, _ in CHOICE_KEYS] == ["1", "2", "3", "4", "5", "6", "7", "0"]
    assert action_of(button_label("3", "A slightly better")) == "A slightly better"
    with pytest.raises(ValueError):
        action_of(button_label("3", "A much better"))
    script = keyboard_script()
    assert all(f'"{key}": ["plumb-key-{key}"]' in script for key in ("1", "7", "0", "s", "u", "enter"))
    # A and B mean "start from" on the Rate tab and a vote on the Arena tab: the visible button is pressed.
    assert '"a": ["plumb-key-a", "plumb-arena-key-a"]' in script and '"x": ["plumb-arena-key-x"]' in script


@pytest.fixture
def ranking_sessions(tmp_path):
    """Sessions on a SQLite store whose campaign 'demo' ranks three policies' responses to each of 3 prompts."""
    engine, sessions, _ = make_store(
        f"sqlite:///{tmp_path / 'ranking.sqlite'}", kind="ranking", policies=("a", "b", "c")
    )
    yield sessions
    engine.dispose()


def test_a_ranking_with_ties_is_checked_then_stored_in_the_task_order(ranking_sessions):
    page = handlers.show_next(ranking_sessions, campaign="demo", rater_name="ana")
    assert len(page.responses) == 3 and page.score_choices == [1, 2, 3]
    ask = dict(campaign="demo", rater_name="ana", assignment_id=page.assignment_id)
    assert "every response" in handlers.score(ranking_sessions, scores=[1, None, 2], **ask).message
    assert "best response 1" in handlers.score(ranking_sessions, scores=[2, 2, 3], **ask).message
    assert stored_judgments(ranking_sessions) == []
    shown_policies = [text.rsplit(" ", 1)[-1] for text in page.responses]
    after = handlers.score(ranking_sessions, scores=[1, 1, 3], seconds_spent=2.0, **ask)
    assert after.message == "Saved your ranking." and after.progress["campaign"] == 1
    (judgment,) = stored_judgments(ranking_sessions)
    by_policy = dict(zip(shown_policies, [1, 1, 3]))
    assert judgment.ranks == [by_policy["a"], by_policy["b"], by_policy["c"]]  # canonical order: policies a, b, c


def test_a_rating_gives_each_response_a_likert_score(tmp_path):
    engine, sessions, _ = make_store(f"sqlite:///{tmp_path / 'rating.sqlite'}", kind="rating", rating_points=4)
    try:
        page = handlers.show_next(sessions, campaign="demo", rater_name="ben")
        assert page.score_choices == [1, 2, 3, 4] and page.score_name == "rating"
        handlers.score(sessions, campaign="demo", rater_name="ben", assignment_id=page.assignment_id, scores=[4, 4])
        (judgment,) = stored_judgments(sessions)
        assert judgment.ratings == [4, 4]
    finally:
        engine.dispose()


def dpo_by_two(conversations):
    """A hand-built scorer: dpo's answers 2 above sft's, so the model prefers dpo at sigmoid(2) = 0.8808."""
    return np.array([[2.0 if "from dpo" in c[-1]["content"] else 0.0 for c in conversations]])


@pytest.mark.parametrize("display", ["shown", "after_vote", "hidden"])
def test_the_page_gets_the_models_guess_only_as_the_campaign_says(sqlite_url, display):
    import gradio as gr

    from collect.app.rater_tab import create_rater_tab, page_values
    from collect.services.campaign_cache import campaign_spec
    from collect.store import campaign_by_name

    engine, sessions, _ = make_store(sqlite_url, prompts=2, prelabels=display)
    score_campaign(sessions, "demo", scorer=dpo_by_two, model="model:hand")
    with sessions.begin() as session:
        spec = campaign_spec(campaign_by_name(session=session, name="demo"))
    with gr.Blocks():
        tab = create_rater_tab(spec)
    page = handlers.show_next(sessions, campaign="demo", rater_name="ana")
    dpo_label = "AB"[[text.endswith("from dpo") for text in page.responses].index(True)]
    # What the page receives: every value of the tab's outputs, as text.
    received = " ".join(map(str, page_values(page, tab).values()))
    if display == "shown":
        assert page.prelabel == {"label": dpo_label, "confidence": 0.8808}
        assert f"Model's guess: {dpo_label} is better (88% sure)" in received
    else:  # no place for it on the tab, and nothing of it in the data before the vote
        assert page.prelabel is None and "prelabel" not in tab
        assert "guess" not in received and "88%" not in received
    after = handlers.judge(sessions, campaign="demo", rater_name="ana", assignment_id=page.assignment_id, choice="Tie")
    if display == "hidden":
        assert after.message == "Saved: Tie."
    else:  # named as the rater saw the task just answered
        assert after.message == f"Saved: Tie. The model's guess on that one: {dpo_label} (88% sure)."
    engine.dispose()
