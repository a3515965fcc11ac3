"""The Campaign tab's quality report as Markdown tables: each statistic explained, with its band, and rater names
that cannot break a table or run as HTML."""

import pytest

from collect.domain.quality.report_markdown import alpha_band, kappa_band, report_markdown

AGREEMENT = {
    "items": 12,
    "raters": 3,
    "raw_agreement": 0.27,
    "raw_agreement_no_ties": 0.5,
    "fleiss_kappa": 0.35,
    "fleiss_items": 10,
    "krippendorff_alpha_nominal": 0.7,
    "krippendorff_alpha_ordinal": 0.81,
    "cohen_kappa_pairs": [{"rater_a": "ana", "rater_b": "b|<i>en</i>", "shared": 10, "kappa": -0.1}],
}
RATER = {
    "rater": "b|<i>en</i>",
    "judgments": 10,
    "gold_accuracy": 0.5,
    "gold_items": 6,
    "self_consistency": None,
    "repeats": 0,
    "intransitivity": None,
    "triads": 0,
    "length_bias": 0.75,
    "consensus_agreement": 0.4,
    "left_win_rate": 0.9,
    "position_p_value": 0.0021,
    "tie_rate": 0.1,
    "median_seconds": 0.22,
    "too_fast": 0.9,
    "speed": "fast",
    "flags": ["gold"],
}
REPORT = {
    "agreement": AGREEMENT,
    "raters": [RATER],
    "aggregation": "majority",
    "items": 12,
    "contested_items": 4,
    "contested": [],
    "reward_model": None,
}


@pytest.mark.parametrize(
    "kappa, band",
    [(-0.1, "poor"), (0.0, "poor"), (0.2, "slight"), (0.35, "fair"), (0.6, "moderate"), (0.8, "substantial")]
    + [(0.81, "almost perfect")],
)
def test_kappa_bands_are_landis_and_koch(kappa, band):
    assert kappa_band(kappa) == band


def test_alpha_bands_are_krippendorffs():
    assert [alpha_band(a) for a in (0.8, 0.7, 0.667, 0.66)] == ["good", "tentative", "tentative", "unreliable"]


def test_each_statistic_is_a_table_row_with_what_it_measures_and_what_is_good():
    text = report_markdown(REPORT)
    lines = text.splitlines()
    assert "| statistic | value | what it measures | what is good |" in lines
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    assert "| 0.270 |" in rows["raw agreement"] and "no correction for chance" in rows["raw agreement"]
    assert "| 0.350 (fair) |" in rows["Fleiss' kappa"] and "Landis & Koch" in rows["Fleiss' kappa"]
    assert "| 0.700 (tentative) |" in rows["Krippendorff's alpha (nominal)"]
    assert "≥ 0.8 good, ≥ 0.667 tentative" in rows["Krippendorff's alpha (nominal)"]
    assert "| 0.810 (good) |" in rows["Krippendorff's alpha (ordinal)"]
    assert "-0.100 (poor)" in text  # Cohen's kappa of the pair


def test_the_raw_agreement_row_says_why_the_exports_mean_agreement_is_higher():
    row = next(line for line in report_markdown(REPORT).splitlines() if line.startswith("| raw agreement |"))
    assert "`mean_agreement` is higher" in row and "a 1-1 split 0.5, where here that split counts 0" in row


def test_the_rater_table_shows_shares_seconds_and_flags_and_escapes_names():
    text = report_markdown(REPORT)
    row = next(line for line in text.splitlines() if line.startswith("| b\\|"))
    assert row.startswith(
        "| b\\|&lt;i&gt;en&lt;/i&gt; | 10 | 50% | - | - | 75% | 40% | 90% | 0.0021 | 10% | 0.2 | 90% |"
    )
    assert row.endswith("| gold, too fast to have read |")
    assert "- **too fast**: share of judgments quicker than skimming both answers takes" in text
    assert "majority: **4** of 12 tasks contested" in text
