"""The quality report's pre-label section: the model's accuracy against the raters' consensus per confidence band
and from each confidence up, and anchoring (raters shown the model's answer against raters not shown it)."""

import json
import math
import random
import re

import numpy as np
import pytest

from collect import quality
from collect.domain.quality.judgments import judgment_table
from collect.domain.quality.prelabels import anchoring, confidence_bands
from collect.domain.quality.report import QualitySettings, format_report, quality_figures, split_models
from collect.domain.quality.report_markdown import report_markdown
from collect.services import admin
from collect.services.export.items import load_items
from collect.services.export.rows import ExportArguments, export_rows
from collect.services.prelabels import score_campaign
from collect.services.read_models import task_view
from collect.services.scheduling import next_task, submit_judgment
from collect.store import campaign_by_name, create_rater, make_engine, rater_by_name, session_factory, upgrade
from plumb.data import DataError
from tests.support.campaigns import margin_scorer, seed_campaign, seed_raters

NAN = np.nan


def wilson(hits, total, z=1.959963984540054):
    """Wilson's 95% interval worked out by hand, to check statsmodels is called as meant."""
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


# Ten items: (confidence, the model's side, the consensus) with -1/+1 the two sides, 0 a tie, NaN no consensus.
TEN = [
    (0.55, 1, -1),  # [0.5, 0.6): wrong
    (0.58, 1, 1),  # right
    (0.6, -1, -1),  # [0.6, 0.7): right, on the edge
    (0.72, -1, 0),  # [0.7, 0.8): the raters said tie: counted apart
    (0.78, 1, 1),  # right
    (0.85, 1, NAN),  # [0.8, 0.9): no consensus: counted apart
    (0.91, -1, -1),  # [0.9, 0.95): right
    (0.94, -1, 1),  # wrong
    (0.96, 1, 1),  # [0.95, 1]: right
    (1.0, -1, -1),  # right: the last band includes 1
    (NAN, NAN, 1),  # no pre-label: not counted anywhere
]


def test_each_band_counts_the_items_with_a_decisive_consensus_and_the_models_agreement():
    confidence, preferred, consensus = (np.array(column, dtype=float) for column in zip(*TEN))
    figures = confidence_bands(preferred, confidence, consensus)
    bands = [(b["low"], b["high"], b["items"], b["agree"], b["ties"], b["undecided"]) for b in figures["bands"]]
    assert bands == [
        (0.5, 0.6, 2, 1, 0, 0),
        (0.6, 0.7, 1, 1, 0, 0),
        (0.7, 0.8, 1, 1, 1, 0),
        (0.8, 0.9, 0, 0, 0, 1),
        (0.9, 0.95, 2, 1, 0, 0),
        (0.95, 1.0, 2, 2, 0, 0),
    ]
    assert [b["accuracy"] for b in figures["bands"]] == [0.5, 1.0, 1.0, None, 0.5, 1.0]
    assert (figures["items"], figures["agree"], figures["accuracy"]) == (8, 6, 0.75)
    assert (figures["ties"], figures["undecided"], figures["outside_bands"]) == (1, 1, 0)
    first = figures["bands"][0]
    assert (first["ci_low"], first["ci_high"]) == pytest.approx(wilson(1, 2))
    assert figures["bands"][3]["ci_low"] is None  # no items: no interval invented
    # From each edge up: (items, agree, coverage = share of the 8 decisive items).
    view = [(t["threshold"], t["items"], t["agree"], t["coverage"]) for t in figures["thresholds"]]
    assert view == [(0.5, 8, 6, 1.0), (0.6, 6, 5, 0.75), (0.7, 5, 4, 0.625), (0.8, 4, 3, 0.5), (0.9, 4, 3, 0.5)] + [
        (0.95, 2, 2, 0.25)
    ]
    assert (figures["thresholds"][1]["ci_low"], figures["thresholds"][1]["ci_high"]) == pytest.approx(wilson(5, 6))


def test_band_edges_are_configurable_and_checked():
    confidence, preferred, consensus = (np.array(column, dtype=float) for column in zip(*TEN))
    figures = confidence_bands(preferred, confidence, consensus, edges=(0.7, 0.9, 1.0))
    # [0.7, 0.9): a tie, a right answer, no consensus; [0.9, 1]: 3 right of 4.
    assert [(b["items"], b["agree"], b["ties"], b["undecided"]) for b in figures["bands"]] == [
        (1, 1, 1, 1),
        (4, 3, 0, 0),
    ]
    assert figures["outside_bands"] == 3  # the three items below 0.7
    with pytest.raises(ValueError, match="increasing"):
        confidence_bands(preferred, confidence, consensus, edges=(0.9, 0.8))
    with pytest.raises(ValueError, match="confidence_edges"):
        quality.QualityArguments(confidence_edges=[0.5, 1.5])
    assert quality.QualityArguments(confidence_edges=[0.5, 0.8, 1]).settings().confidence_edges == (0.5, 0.8, 1.0)


def record(rater, item, choice, *, seen=None, prelabel="a", confidence=0.8, **extra):
    return {
        "rater": rater,
        "item": item,
        "left": "a",
        "right": "b",
        "choice": choice,
        "prelabel": prelabel,
        "prelabel_confidence": confidence if prelabel else None,
        "prelabel_seen": seen,
        **extra,
    }


def anchoring_records():
    # Shown the model's answer ("a", on the left) before voting: 5 of 6 decided votes chose it; not shown: 3 of 6.
    seen = [record(f"s{i}", f"i{i}", "left" if i < 5 else "right", seen=True) for i in range(6)]
    unseen = [record(f"u{i}", f"i{i}", "left" if i < 3 else "right", seen=False) for i in range(6)]
    ignored = [
        record("s0", "i6", "tie", seen=True),  # not decided: a tie chooses no side
        record("u0", "i6", "both_bad", seen=False),
        record("s1", "i7", "left", seen=None),  # voted before the model scored the task: unknown
        record("s2", "i8", "left", prelabel=None),  # no pre-label
        record("model:m", "i9", "left", model_label=True),  # an auto-label is no person's vote
    ]
    return seen + unseen + ignored


def test_anchoring_compares_how_often_raters_who_saw_the_pre_label_chose_it_with_raters_who_did_not():
    figures = anchoring(judgment_table(anchoring_records()))
    seen, unseen = figures["seen"], figures["unseen"]
    assert (seen["judgments"], seen["followed"], seen["share"]) == (6, 5, 5 / 6)
    assert (unseen["judgments"], unseen["followed"], unseen["share"]) == (6, 3, 3 / 6)
    assert figures["difference"] == pytest.approx(1 / 3)
    assert (seen["ci_low"], seen["ci_high"]) == pytest.approx(wilson(5, 6))
    # Two-proportion z-test by hand: pooled share 8/12, standard error sqrt(p (1 - p) (1/6 + 1/6)).
    pooled = 8 / 12
    z = (5 / 6 - 3 / 6) / math.sqrt(pooled * (1 - pooled) * (2 / 6))
    assert figures["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert (figures["ties"], figures["unknown"]) == (2, 1)
    assert seen["mean_confidence"] == pytest.approx(0.8)


def test_anchoring_says_when_a_group_is_empty_instead_of_inventing_figures():
    only_seen = [r for r in anchoring_records() if r["prelabel_seen"] is not False]
    figures = anchoring(judgment_table(only_seen))
    assert figures["seen"]["judgments"] == 6
    assert figures["unseen"] is None and figures["difference"] is None and figures["p_value"] is None
    agreeing = [record(f"r{i}", f"i{i}", "left", seen=i % 2 == 0) for i in range(4)]
    assert anchoring(judgment_table(agreeing))["p_value"] is None  # everyone followed: the z-test is undefined


def test_the_consensus_leaves_the_models_auto_labels_out():
    # i0: two people split 1-1, and the model's auto-label would break the tie if it voted.
    records = [
        record("ana", "i0", "left", seen=False),
        record("ben", "i0", "right", seen=False),
        record("model:m", "i0", "left", model_label=True),
        record("ana", "i1", "left", seen=False),
        record("ben", "i1", "left", seen=False),
    ]
    humans, model = split_models(judgment_table(records))
    report, _ = quality_figures(humans, QualitySettings(), model=model)
    assert [row["rater"] for row in report["raters"]] == ["ana", "ben"]
    section = report["prelabels"]
    assert section["auto_labels"] == 1
    bands = section["confidence"]
    assert (bands["items"], bands["agree"], bands["undecided"]) == (1, 1, 1)
    assert report["reward_model"]["items"] == 0  # the auto-labelled item has no consensus to compare with


def test_files_without_pre_label_fields_give_the_report_they_gave_before():
    old = [{k: v for k, v in r.items() if not k.startswith("prelabel")} for r in anchoring_records()[:12]]
    table = judgment_table(old)
    assert (table.prelabel == "").all() and np.isnan(table.prelabel_confidence).all()
    assert np.isnan(table.prelabel_seen).all() and not table.model_label.any()
    report, _ = quality_figures(split_models(table)[0], QualitySettings())
    assert "prelabels" not in report
    assert "pre-label" not in format_report(report).lower() and "Pre-label" not in report_markdown(report)


def test_the_shipped_demo_report_has_no_pre_label_section(tmp_path):
    args = quality.QualityArguments(output_dir=str(tmp_path), model_rater="reward-model")
    assert "prelabels" not in quality.main(args)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("prelabel", "c9", "neither 'left' nor 'right'"),
        ("prelabel_confidence", 1.5, "between 0 and 1"),
        ("prelabel_confidence", "high", "expected a number"),
        ("prelabel_seen", "yes", "expected true or false"),
        ("model_label", 1, "expected true or false"),
    ],
)
def test_a_bad_pre_label_field_names_the_row_and_the_field(field, value, message):
    with pytest.raises(DataError, match=f"row 0: field '{field}'.*{message}"):
        judgment_table([{**record("ana", "i0", "left"), field: value}])


# End to end: two scored campaigns in a real store, one showing pre-labels before the vote, one after it.

# The dpo answer's reward on prompt i (sft's is 0): confidences 0.550, 0.731, 0.832 (sft preferred), 0.971, 0.998.
MARGINS = [0.2, 1.0, -1.6, 3.5, 6.0]
# What raters r0, r1, r2 vote for on prompts 0-3 (prompt 4 is auto-labelled: sure at 0.998 >= 0.99).
VOTES = {
    "shown": ["ddd", "ddd", "ssd", "ddd"],  # d: dpo, s: sft; followed the model 11 times in 12
    "after": ["dss", "dds", "dds", "ddd"],  # followed the model 7 times in 12
}


hand_scorer = margin_scorer(MARGINS)


def judge_everything(sessions, campaign_name, rater_name):
    """The rater takes every task the scheduler gives them and votes as VOTES says, by the answer shown."""
    while True:
        with sessions.begin() as session:
            rater = rater_by_name(session=session, name=rater_name)
            campaign = campaign_by_name(session=session, name=campaign_name)
            assignment = next_task(session=session, campaign=campaign, rater=rater, rng=random.Random(0))
            if assignment is None:
                return
            view = task_view(session, assignment)
            i = int(re.search(r"question (\d+)", str(view.prompt)).group(1))
            wanted = "dpo" if VOTES[campaign_name][i][int(rater_name[-1])].lower() == "d" else "sft"
            left = view.candidates[0]["completion"][0]["content"]
            preference = 1 if left.endswith(wanted) else -1  # display order: positive, the left one is better
            submit_judgment(session=session, rater=rater, assignment_id=assignment.id, preference=preference)


def test_end_to_end_scored_campaigns_judged_and_exported_give_bands_and_anchoring(sqlite_url, tmp_path):
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = session_factory(engine)
    for name, display in (("shown", "shown"), ("after", "after_vote")):
        seed_campaign(sessions, name=name, prompts=5, raters_per_task=3, max_raters_per_task=3, prelabels=display)
        score_campaign(sessions, name, scorer=hand_scorer, model="model:hand", auto_label_above=0.99, audit_share=0)
    seed_raters(sessions, 3, prefix="r")
    with sessions.begin() as session:
        create_rater(session=session, name="rev", role="reviewer")
    records = []
    for name in VOTES:
        for rater in ("r0", "r1", "r2"):
            judge_everything(sessions, name, rater)
        with sessions() as session:
            items = load_items(session, campaign_by_name(session=session, name=name).id)
        rows, _ = export_rows(items, ExportArguments(campaign=name, format="judgments"))
        records += rows

    assert len(records) == 2 * (4 * 3 + 1)
    auto = [r for r in records if r["model_label"]]
    assert [(r["rater"], r["prelabel_seen"], r["prelabel_confidence"]) for r in auto] == [
        ("model:hand", None, 0.9975)
    ] * 2
    assert all(r["prelabel"] in (r["left"], r["right"]) for r in records)
    assert {r["prelabel_seen"] for r in records if not r["model_label"]} == {True, False}

    humans, model = split_models(judgment_table(records))
    report, _ = quality_figures(humans, QualitySettings(), model=model)
    section = report["prelabels"]
    assert section["auto_labels"] == 2 and "model:hand" not in [row["rater"] for row in report["raters"]]
    # Per band, over the 8 tasks people judged: prompt 0 (0.55) right in 'shown', wrong in 'after'; prompt 1
    # (0.73) right in both; prompt 2 (0.83) right in 'shown', wrong in 'after'; prompt 3 (0.97) right in both.
    bands = [(b["items"], b["agree"]) for b in section["confidence"]["bands"]]
    assert bands == [(2, 1), (0, 0), (2, 2), (2, 1), (0, 0), (2, 2)]
    assert (section["confidence"]["items"], section["confidence"]["agree"]) == (8, 6)
    above = {t["threshold"]: (t["items"], t["agree"], t["coverage"]) for t in section["confidence"]["thresholds"]}
    assert above[0.7] == (6, 5, 0.75) and above[0.95] == (2, 2, 0.25)
    anchored = section["anchoring"]
    assert (anchored["seen"]["followed"], anchored["seen"]["judgments"]) == (11, 12)
    assert (anchored["unseen"]["followed"], anchored["unseen"]["judgments"]) == (7, 12)
    assert anchored["difference"] == pytest.approx(4 / 12)
    print(format_prelabel_text(report))  # shown with -s: the section as `plumb collect quality` prints it

    # `plumb collect quality` on the exported file, and the Campaign tab's Markdown through the admin service.
    path = tmp_path / "judgments.jsonl"
    path.write_text("".join(f"{json.dumps(r)}\n" for r in records))
    saved = quality.main(quality.QualityArguments(judgments=str(path), output_dir=str(tmp_path / "q")))
    assert saved["prelabels"] == section
    tab, _, _ = admin.campaign_quality(sessions, campaign="shown", staff_name="rev", plot_dir=str(tmp_path))
    markdown = report_markdown(tab)
    print(markdown[markdown.index("#### Pre-labels") :])
    assert "| 0.50–0.60 | 1 | 1 | 100% |" in markdown and "Every rater was shown the pre-labels" in markdown
    assert [row["rater"] for row in tab["raters"]] == ["r0", "r1", "r2"]
    engine.dispose()


def format_prelabel_text(report):
    text = format_report(report)
    return text[text.index("pre-labels vs") :]
