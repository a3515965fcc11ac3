"""The one module of answers: the scale's labels both ways, "both bad", what a judgment says, and disagreement."""

from types import SimpleNamespace

import pytest

from collect.domain.answers import (
    BOTH_BAD,
    BOTH_BAD_CHOICE,
    PAIRWISE_SCALE,
    answer_of,
    choice_of,
    choices,
    pairwise_verdict,
    raters_disagree,
    scale_options,
    verdict,
)


def judgment(preference=None, both_bad=False, ranks=None, ratings=None):
    return SimpleNamespace(preference=preference, both_bad=both_bad, ranks=ranks, ratings=ratings)


def test_every_choice_label_maps_to_its_answer_and_back():
    assert [answer_of(label) for label in choices()] == [
        *({"preference": value, "both_bad": False} for value in (3, 2, 1, 0, -1, -2, -3)),
        {"preference": None, "both_bad": True},
    ]
    for label in choices():
        assert choice_of(**answer_of(label)) == label
    assert answer_of("A slightly better") == {"preference": 1, "both_bad": False}
    assert choice_of(None, True) == BOTH_BAD_CHOICE == "Both bad"


def test_an_unknown_label_is_refused_naming_the_labels():
    with pytest.raises(ValueError, match=r"unknown choice 'C better' \(choose one of: A much better, .*Both bad\)"):
        answer_of("C better")


def test_the_scale_shown_to_raters_offers_both_bad_only_when_the_campaign_does():
    assert [option["label"] for option in scale_options()] == choices() == [*dict(PAIRWISE_SCALE), "Both bad"]
    assert scale_options()[-1] == {"label": "Both bad", "both_bad": True}
    assert choices(allow_both_bad=False) == [label for label, _ in PAIRWISE_SCALE]


def test_a_verdict_is_the_sign_both_bad_or_the_scores():
    assert [pairwise_verdict(p, False) for p in (3, 1, 0, -2)] == [1, 1, 0, -1]
    assert pairwise_verdict(None, True) == verdict(judgment(both_bad=True)) == BOTH_BAD == "both_bad"
    assert verdict(judgment(preference=-3)) == -1
    assert verdict(judgment(ranks=[2, 1])) == (2, 1) and verdict(judgment(ratings=[4, 5])) == (4, 5)


def test_raters_disagree_when_their_verdicts_differ_not_their_strengths():
    assert not raters_disagree([judgment(preference=1), judgment(preference=3)])
    assert raters_disagree([judgment(preference=1), judgment(preference=0)])
    assert raters_disagree([judgment(preference=-1), judgment(both_bad=True)])
    assert not raters_disagree([judgment(ranks=[1, 2]), judgment(ranks=[1, 2])])
    assert not raters_disagree([judgment(preference=2)])
