"""Judgment records and per-rater reliability, each figure on a table small enough to count by hand."""

import numpy as np
import pytest

from collect.domain.quality.judgments import judgment_table, label_matrix, preference
from collect.domain.quality.raters import (
    consensus_agreement,
    gold_accuracy,
    intransitivity,
    length_bias,
    median_seconds,
    position_bias,
    rater_report,
    self_consistency,
)
from plumb.data import DataError


def table(*rows, **common):
    """Judgments from (rater, item, left, right, choice) tuples plus per-row dicts of extra fields."""
    records = []
    for row in rows:
        extra = row[5] if len(row) > 5 else {}
        records.append({**dict(zip(("rater", "item", "left", "right", "choice"), row[:5])), **common, **extra})
    return judgment_table(records)


# Records


def test_records_become_columns():
    judged = table(("ana", 1, "a", "b", "right", {"strength": 2, "seconds": 3.5}), ("ben", 1, "b", "a", "both_bad"))
    assert judged.rater.tolist() == ["ana", "ben"] and judged.item.tolist() == ["1", "1"]
    assert judged.winner.tolist() == [1, 0] and judged.strength.tolist() == [2.0, 1.0]
    assert judged.seconds[0] == 3.5 and np.isnan(judged.seconds[1])


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"rater": "ana", "item": "x", "left": "a", "right": "b"}, "row 1: field 'choice' is missing"),
        ({"rater": "ana", "item": "x", "left": "a", "right": "b", "choice": "A"}, "row 1: field 'choice': 'A'"),
        ({"rater": "ana", "item": "x", "left": "a", "right": "a", "choice": "tie"}, "row 1: fields 'left' and 'right'"),
        (
            {"rater": "ana", "item": "x", "left": "a", "right": "b", "choice": "tie", "seconds": "9"},
            "row 1: field 'seconds': expected a number",
        ),
        (
            {"rater": "ana", "item": "x", "left": "a", "right": "b", "choice": "left", "strength": 0},
            "row 1: field 'strength'",
        ),
    ],
)
def test_bad_record_names_row_and_field(record, message):
    good = {"rater": "ana", "item": "w", "left": "a", "right": "b", "choice": "left"}
    with pytest.raises(DataError, match=f"^campaign.jsonl: {message}"):
        judgment_table([good, record], source="campaign.jsonl")


def test_preference_is_the_same_whichever_side_a_candidate_was_shown():
    # Canonical order sorts the ids: (a, b). "b" won in both judgments: +1 both times; strength scales it.
    judged = table(("ana", "x", "a", "b", "right", {"strength": 2}), ("ben", "x", "b", "a", "left"))
    assert preference(judged).tolist() == [1.0, 1.0]
    assert preference(judged, with_strength=True).tolist() == [2.0, 1.0]


def test_label_matrix_keeps_each_raters_first_judgment():
    judged = table(("ana", "x", "a", "b", "left"), ("ana", "x", "b", "a", "left"), ("ben", "y", "c", "d", "tie"))
    labels, items, raters = label_matrix(judged, preference(judged))
    assert items.tolist() == ["x", "y"] and raters.tolist() == ["ana", "ben"]
    np.testing.assert_array_equal(labels, [[-1, np.nan], [np.nan, 0]])  # ana's repeat (b won) is not used


# Per-rater statistics (arrays follow the sorted rater ids)


def test_gold_accuracy():
    # ana: gold x answered "a" (right), gold y answered tie (wrong), z is no gold item -> 1 of 2.
    judged = table(
        ("ana", "x", "a", "b", "left", {"gold": "a"}),
        ("ana", "y", "c", "d", "tie", {"gold": "d"}),
        ("ana", "z", "e", "f", "left"),
        ("ben", "x", "b", "a", "left", {"gold": "a"}),
    )
    correct, gold = gold_accuracy(judged)
    assert correct.tolist() == [1, 0] and gold.tolist() == [2, 1]


def test_self_consistency_on_swapped_repeats():
    # x: a won, then (sides swapped) a won again -> consistent; y: c won, then (swapped) d won -> not.
    judged = table(
        ("ana", "x", "a", "b", "left"),
        ("ana", "x", "b", "a", "right"),
        ("ana", "y", "c", "d", "left"),
        ("ana", "y", "d", "c", "left"),
        ("ana", "z", "e", "f", "tie"),
    )
    consistent, repeats = self_consistency(judged)
    assert consistent.tolist() == [1] and repeats.tolist() == [2]


def test_intransitivity_counts_cycles_among_fully_compared_triads():
    # ana: A>B, B>C, C>A (a cycle), D>A, D>B; C-D never compared. Triads {A,B,C} and {A,B,D}: 1 cycle.
    # ben: A>B, B>C, A>C is transitive; his A-D tie leaves {A,B,D} incomplete: 1 triad, no cycle.
    judged = table(
        ("ana", 1, "A", "B", "left"),
        ("ana", 2, "B", "C", "left"),
        ("ana", 3, "A", "C", "right"),
        ("ana", 4, "D", "A", "left"),
        ("ana", 5, "B", "D", "right"),
        ("ben", 1, "A", "B", "left"),
        ("ben", 2, "C", "B", "right"),
        ("ben", 3, "A", "C", "left"),
        ("ben", 6, "A", "D", "tie"),
        ("ben", 5, "B", "D", "left"),
    )
    cycles, triads = intransitivity(judged)
    assert cycles.tolist() == [1, 0] and triads.tolist() == [2, 1]


def test_intransitivity_uses_one_verdict_per_pair():
    # The repeat C>A would close a cycle with the first verdicts if it counted; only the first (A>C) does.
    judged = table(
        ("ana", 1, "A", "B", "left"),
        ("ana", 2, "B", "C", "left"),
        ("ana", 3, "A", "C", "left"),
        ("ana", 3, "C", "A", "left"),
    )
    assert intransitivity(judged)[0].tolist() == [0]


def test_length_bias():
    # Longer won in rows 0 and 2, shorter in row 1; the tie and the equal lengths are not counted: 2 of 3.
    judged = table(
        ("ana", 1, "a", "b", "left", {"left_length": 90, "right_length": 10}),
        ("ana", 2, "c", "d", "left", {"left_length": 5, "right_length": 50}),
        ("ana", 3, "e", "f", "right", {"left_length": 5, "right_length": 50}),
        ("ana", 4, "g", "h", "tie", {"left_length": 5, "right_length": 50}),
        ("ana", 5, "i", "j", "left", {"left_length": 7, "right_length": 7}),
    )
    longer_won, judged_count = length_bias(judged)
    assert longer_won.tolist() == [2] and judged_count.tolist() == [3]


def test_consensus_agreement_with_the_others():
    # Item x: ana, ben, chloe say a, dev says b. Each of the first three sees others {a: 2, b: 1} -> agrees;
    # dev sees {a: 3} -> disagrees. Item y: ana a, ben b: each sees one other vote, the other's -> both disagree.
    judged = table(
        ("ana", "x", "a", "b", "left"),
        ("ben", "x", "b", "a", "right"),
        ("chloe", "x", "a", "b", "left"),
        ("dev", "x", "a", "b", "right"),
        ("ana", "y", "c", "d", "left"),
        ("ben", "y", "c", "d", "right"),
    )
    agreed, decided = consensus_agreement(judged)
    assert agreed.tolist() == [1, 1, 1, 0] and decided.tolist() == [2, 2, 1, 1]


def test_consensus_is_undecided_on_a_split():
    # ana and chloe (a) each see the others split a/b: nothing to agree with; ben (b) sees {a: 2}.
    judged = table(("ana", "x", "a", "b", "left"), ("ben", "x", "a", "b", "right"), ("chloe", "x", "a", "b", "left"))
    assert consensus_agreement(judged)[1].tolist() == [0, 1, 0]


def test_position_bias_binomial_test_by_hand():
    # 9 left wins of 10 strict verdicts (the tie is not counted).
    # Two-sided p = 2 * (C(10,9) + C(10,10)) / 2^10 = 22/1024.
    rows = [("ana", i, f"l{i}", f"r{i}", "left") for i in range(9)] + [
        ("ana", 9, "l9", "r9", "right"),
        ("ana", 10, "x", "y", "tie"),
    ]
    left_won, strict, p_value = position_bias(table(*rows))
    assert left_won.tolist() == [9] and strict.tolist() == [10]
    assert p_value[0] == pytest.approx(22 / 1024)


def test_median_seconds():
    judged = table(
        ("ana", 1, "a", "b", "left", {"seconds": 30}),
        ("ana", 2, "c", "d", "left", {"seconds": 50}),
        ("ben", 1, "a", "b", "left", {"seconds": 2}),
        ("chloe", 1, "a", "b", "left"),
    )
    medians = median_seconds(judged)
    assert medians[:2].tolist() == [40.0, 2.0] and np.isnan(medians[2])


def test_rater_report_flags_the_rater_who_fails_gold_and_repeats():
    rows = []
    for k in range(4):  # four gold items, each judged twice with the sides swapped; "a" is the answer
        gold = {"gold": f"a{k}"}
        rows += [("good", f"g{k}", f"a{k}", f"b{k}", "left", gold), ("good", f"g{k}", f"b{k}", f"a{k}", "right", gold)]
        rows += [("lazy", f"g{k}", f"a{k}", f"b{k}", "left", gold), ("lazy", f"g{k}", f"b{k}", f"a{k}", "left", gold)]
    report = {row["rater"]: row for row in rater_report(table(*rows), min_gold=4, min_repeats=4)}
    assert report["good"]["gold_accuracy"] == 1.0 and report["good"]["flags"] == []
    # lazy always clicks left: right when "a" is on the left, wrong on every swapped repeat -> gold 4 of 8,
    # no repeat agrees with the first verdict -> consistency 0 of 4; every strict verdict went left.
    assert report["lazy"]["gold_accuracy"] == 4 / 8 and report["lazy"]["self_consistency"] == 0.0
    assert report["lazy"]["flags"] == ["gold", "consistency"]
    assert report["lazy"]["left_win_rate"] == 1.0 and report["good"]["left_win_rate"] == 0.5
    assert report["good"]["tie_rate"] == 0.0 and report["good"]["judgments"] == 8
