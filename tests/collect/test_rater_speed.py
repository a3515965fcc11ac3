"""The speed flag: a rater is flagged for answering faster than the answers can be read, never for taking time.

Reading time here is (characters of both answers) / 50 per second, at least 1 s; the
numbers below are worked out by hand from that.
"""

import numpy as np

from collect.domain.quality.judgments import judgment_table
from collect.domain.quality.raters import rater_report, reading_seconds, too_fast

# Two answers of two short paragraphs each: 150 + 150 characters, so reading both takes 300 / 50 = 6 s.
TWO_PARAGRAPHS = {"left_length": 150, "right_length": 150}


def judged(rater: str, seconds: list[float], lengths: dict = TWO_PARAGRAPHS) -> list[dict]:
    return [
        {"rater": rater, "item": f"t{i}", "left": f"a{i}", "right": f"b{i}", "choice": "left", "seconds": s, **lengths}
        for i, s in enumerate(seconds)
    ]


def test_reading_time_is_the_answers_characters_over_fifty_a_second_with_a_one_second_floor():
    table = judgment_table(
        [
            *judged("ana", [5.0]),  # 300 characters: 6 s
            *judged("ana", [5.0], {"left_length": 10, "right_length": 20}),  # 30 / 50 = 0.6 s, floored to 1 s
            *judged("ana", [5.0], {}),  # lengths unknown: the floor
        ]
    )
    assert reading_seconds(table).tolist() == [6.0, 1.0, 1.0]


def test_a_rater_at_a_fifth_of_a_second_is_flagged_fast_and_one_at_seven_and_a_half_seconds_is_not():
    # fred (median 0.22 s) gave most judgments, so everyone's median is fast too: compared with it, fred looked
    # normal and ana "slow". Against the 6 s that reading takes, every one of fred's is too fast, and only
    # ana's 5.9 s is.
    fred = judged("fred", [0.2, 0.21, 0.22, 0.22, 0.22, 0.25, 0.3])
    ana = judged("ana", [5.9, 7.55, 8.0])
    rows = {row["rater"]: row for row in rater_report(judgment_table(fred + ana))}
    assert rows["fred"]["median_seconds"] == 0.22 and rows["fred"]["too_fast"] == 1.0
    assert rows["fred"]["speed"] == "fast"
    assert rows["ana"]["median_seconds"] == 7.55 and rows["ana"]["too_fast"] == 1 / 3
    assert rows["ana"]["speed"] == ""


def test_half_the_judgments_too_fast_flags_a_rater_and_untimed_judgments_do_not_count():
    # ben: 2 of 4 timed judgments under 6 s (the untimed one is no evidence); cleo: 1 of 3.
    ben = judged("ben", [1.0, 2.0, 10.0, 12.0]) + [{**judged("ben", [0.0])[0], "item": "t9", "seconds": None}]
    cleo = judged("cleo", [1.0, 10.0, 12.0])
    rushed, timed = too_fast(judgment_table(ben + cleo))
    assert rushed.tolist() == [2, 1] and timed.tolist() == [4, 3]
    rows = {row["rater"]: row for row in rater_report(judgment_table(ben + cleo))}
    assert (rows["ben"]["speed"], rows["cleo"]["speed"]) == ("fast", "")


def test_a_rater_with_no_timed_judgment_has_no_speed_figures():
    row = rater_report(judgment_table(judged("dev", [np.nan])))[0]
    assert row["too_fast"] is None and row["median_seconds"] is None and row["speed"] == ""
