"""The data-hygiene rules (collect.domain.hygiene) on small hand-made rows, each count and score worked out here;
near duplicates with the real offline MiniLM, the language check with py3langid's bundled model."""

import math

import numpy as np
import pytest

from collect.domain.campaign import campaign_from_dict
from collect.domain.hygiene import (
    Finding,
    HygieneSettings,
    Row,
    duplicate_candidates,
    duplicate_prompts,
    empty_or_broken,
    find_all,
    identical_candidates,
    length_outliers,
    near_duplicate_prompts,
    normalise,
    robust_z,
    settings_from_dict,
    wrong_language,
)
from collect.domain.hygiene_report import (
    Decision,
    build_report,
    decide,
    flags_to_store,
    resolve_rows,
    resolve_tasks,
    table,
)
from plumb.config import ConfigError


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def row(prompt: str, *candidates: str, reference: bool = False, label: str = "") -> Row:
    return Row(user(prompt), list(candidates), label=label or prompt[:20], reference=reference)


def test_normalise_collapses_whitespace_and_folds_case():
    assert normalise("  What IS\n\t2+2 ?  ") == "what is 2+2 ?"
    assert normalise("Straße") == normalise("STRASSE")  # casefold, not lower: ß folds to ss


def test_exact_duplicate_prompts_after_whitespace_and_case_the_first_stays():
    rows = [row("What is 2+2?", label="r0"), row("what  is 2+2?\n", label="r1"), row("What is 3+3?", label="r2")]
    assert duplicate_prompts(rows) == [Finding("duplicate_prompt", 1, None, "same prompt as r0")]
    # A multi-turn prompt is its whole conversation: the same last turn after other turns is no duplicate.
    longer = Row([*user("Hi"), {"role": "assistant", "content": "Hello"}, *user("What is 2+2?")], [], label="r3")
    assert duplicate_prompts([rows[0], longer]) == []


def test_a_stored_prompt_is_the_original_and_never_found_itself():
    stored = row("Tell me a joke", reference=True, label="stored prompt 'p1'")
    again = row("tell me a JOKE", label="row 0")
    assert duplicate_prompts([stored, again]) == [
        Finding("duplicate_prompt", 1, None, "same prompt as stored prompt 'p1'")
    ]
    assert duplicate_prompts([again, stored]) == []  # the stored copy comes second here: it is not at fault


def test_duplicate_candidates_are_the_same_answer_to_the_same_prompt_in_a_later_row():
    rows = [
        row("Capital of France?", "Paris.", "Lyon.", label="r0"),
        row("capital of france?", "PARIS.", "Marseille.", label="r1"),  # Paris again: a duplicate
        row("Capital of Italy?", "Paris.", label="r2"),  # the same text for another prompt: not a duplicate
    ]
    assert duplicate_candidates(rows) == [Finding("duplicate_candidate", 1, 0, "same answer as r0, candidate 0")]


def test_identical_candidates_within_a_row_make_a_pair_nobody_can_judge():
    rows = [row("Capital of France?", "Paris.", "Lyon.", " paris. ", "Paris."), row("Q", "", "")]
    assert identical_candidates(rows) == [
        Finding("identical_candidates", 0, 2, "candidate 2 is the same as candidate 0"),
        Finding("identical_candidates", 0, 3, "candidate 3 is the same as candidate 0"),
    ]  # two empty answers are the empty rule's, not this one's


def test_empty_and_broken_prompts_and_candidates():
    ends_with_assistant = Row([*user("Hi"), {"role": "assistant", "content": "Hello"}], ["x"], label="r3")
    rows = [
        row("   \n", "fine"),
        row("fine", "", "caf\ufffd", "bell\x07", "tab\tand\nnewline are fine"),
        row("fine", "fine"),
        ends_with_assistant,
    ]
    found = [(f.row, f.candidate, f.detail) for f in empty_or_broken(rows)]
    assert found == [
        (0, None, "prompt: empty"),
        (1, 0, "candidate 0: empty"),
        (1, 1, "candidate 1: U+FFFD replacement character (damaged encoding)"),
        (1, 2, "candidate 2: control character U+0007"),
        (3, None, "prompt: its last turn is the assistant's, not the user's"),
    ]


def test_robust_z_by_hand():
    # [1, 2, 3, 4, 100]: median 3, |deviations| 2, 1, 0, 1, 97, MAD 1, z = 0.6745 * (x - 3).
    assert robust_z([1, 2, 3, 4, 100]) == pytest.approx([-1.349, -0.6745, 0, 0.6745, 65.4265])
    # [5, 5, 5, 5, 9]: MAD 0, mean |deviation| 0.8, z(9) = 4 / (1.253314 * 0.8) = 3.98942.
    assert robust_z([5, 5, 5, 5, 9]) == pytest.approx([0, 0, 0, 0, 3.98942], abs=1e-5)
    assert robust_z([7, 7, 7]).tolist() == [0, 0, 0]


def test_length_outliers_by_robust_z_of_log_length():
    # Candidates of 8, 10, 12, 10 and 200 characters. Logs about median log 10; |deviations|: log 1.25 = 0.2231,
    # 0, log 1.2 = 0.1823, 0, log 20 = 2.9957; MAD 0.1823. z(200) = 0.6745 * 2.9957 / 0.1823 = 11.08,
    # z(8) = -0.6745 * 0.2231 / 0.1823 = -0.83: only the 200-character one is beyond 3.5.
    answers = ["a" * 8, "b" * 10, "c" * 12, "d" * 10, "e" * 200]
    rows = [row(f"question number {i}", text) for i, text in enumerate(answers)]
    found = length_outliers(rows, z=3.5)
    assert [(f.row, f.candidate) for f in found] == [(4, 0)]
    assert found[0].detail == "candidate 0: 200 characters, robust z +11.1 (median 10)"
    expected = 0.6745 * math.log(20) / math.log(1.2)
    assert float(found[0].detail.split("z ")[1].split(" ")[0]) == pytest.approx(expected, abs=0.05)
    assert length_outliers(rows, z=12) == []


def test_near_duplicates_from_hand_made_unit_vectors():
    # cos(v0, v1) = 0.6, cos(v0, v2) = 0.8, cos(v1, v2) = 0.48 + 0.48 = 0.96: row 2 is a near duplicate of row 1.
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6]])
    rows = [row("a", label="r0"), row("b", label="r1"), row("c", label="r2")]
    expected = [Finding("near_duplicate_prompt", 2, None, "cosine 0.960 with r1")]
    assert near_duplicate_prompts(rows, vectors, 0.95) == expected
    assert near_duplicate_prompts(rows, vectors * 3, 0.95, block=1) == expected  # unnormalised, one row a block
    assert near_duplicate_prompts(rows, vectors, 0.97) == []
    assert near_duplicate_prompts(rows, vectors, 0.95, skip={2}) == []


def test_a_near_duplicate_found_by_real_minilm_embeddings():
    from collect.services.hygiene import embed_texts

    texts = [
        "How do I bake sourdough bread at home?",
        "What is the capital of France?",
        "How can I bake sourdough bread at home?",
    ]
    vectors = embed_texts(texts)
    assert vectors.shape == (3, 384) and np.linalg.norm(vectors, axis=1) == pytest.approx(1, abs=1e-5)
    paraphrase, unrelated = float(vectors[0] @ vectors[2]), float(vectors[0] @ vectors[1])
    assert paraphrase > 0.9 > 0.3 > unrelated
    found = near_duplicate_prompts([row(t, label=f"r{i}") for i, t in enumerate(texts)], vectors, 0.9)
    assert [(f.row, f.detail.endswith("with r0")) for f in found] == [(2, True)]


def test_wrong_language_with_a_hand_made_detector():
    guesses = {
        "Guten Morgen, wie geht es dir heute?": ("de", 0.95),
        "Is this English or not, really?": ("de", 0.6),
        "def double(value): return value * 2": ("zxx", 0.99),  # code: no language, so not another one
    }
    texts = ["Is this English or not, really?", "Kurz.", "def double(value): return value * 2"]
    rows = [row("Guten Morgen, wie geht es dir heute?", *texts)]
    found = wrong_language(rows, "en", lambda text: guesses.get(text, ("en", 1.0)), min_letters=10, confidence=0.9)
    # The prompt: German, sure enough. Candidate 0: German but only 0.6 sure. Candidate 1: 4 letters, too short.
    # Candidate 2: code, which is no language at all.
    assert found == [Finding("wrong_language", 0, None, "prompt: detected 'de' (p 0.95), not 'en'")]


def test_wrong_language_with_the_real_detector():
    from collect.services.hygiene import detect_language

    german = "Ich möchte wissen, wie man zu Hause ein gutes Sauerteigbrot backt."
    english = "I would like to know how to bake a good sourdough bread at home."
    assert detect_language(german)[0] == "de" and detect_language(english)[0] == "en"
    rows = [row(english, german, english)]
    found = wrong_language(rows, "en", detect_language, min_letters=20, confidence=0.9)
    assert [(f.row, f.candidate) for f in found] == [(0, 0)] and "detected 'de'" in found[0].detail


def test_settings_from_a_campaign_block_and_errors_that_name_the_key():
    settings = settings_from_dict({"duplicate_prompt": "drop", "length_outlier_z": 4}, where="c.yaml", language="en")
    assert (settings.duplicate_prompt, settings.length_outlier_z, settings.near_duplicate_prompt) == ("drop", 4, "flag")
    cases = [
        ({"duplicate_prompt": "remove"}, "c.yaml: key 'hygiene.duplicate_prompt': expected one of off, keep, flag"),
        (
            {"dupliate_prompt": "drop"},
            "c.yaml: key 'hygiene.dupliate_prompt': unknown (did you mean 'duplicate_prompt'",
        ),
        ({"near_duplicate_threshold": 1.5}, "key 'hygiene.near_duplicate_threshold': expected a cosine similarity"),
        ({"language": "en"}, "key 'hygiene.language': name the language at the top level"),
        ([1, 2], "key 'hygiene': expected a mapping"),
    ]
    for values, message in cases:
        with pytest.raises(ConfigError) as error:
            settings_from_dict(values, where="c.yaml")
        assert message in str(error.value)
    with pytest.raises(ConfigError, match=r"demo.yaml: key 'hygiene.examples': expected an integer"):
        campaign_from_dict({"name": "d", "hygiene": {"examples": -1}}, where="demo.yaml")
    with pytest.raises(ConfigError, match=r"demo.yaml: key 'language': expected an ISO 639-1 code"):
        campaign_from_dict({"name": "d", "language": "English"}, where="demo.yaml")


def test_the_language_rule_is_off_without_a_language():
    assert HygieneSettings().action("wrong_language") == "off"
    assert HygieneSettings(language="en").action("wrong_language") == "flag"
    # Off: no detector needed, and none asked for.
    assert (
        find_all([row("Bonjour tout le monde, comment allez-vous?")], HygieneSettings(near_duplicate_prompt="off"))
        == []
    )


def test_decisions_take_the_strongest_action_and_rows_with_judgments_are_never_dropped():
    settings = HygieneSettings(duplicate_prompt="flag", empty_or_broken="drop", identical_candidates="drop")
    findings = [
        Finding("duplicate_prompt", 1, None, ""),
        Finding("empty_or_broken", 1, None, ""),
        Finding("identical_candidates", 1, 1, ""),
        Finding("identical_candidates", 2, 1, ""),
        Finding("duplicate_prompt", 3, None, ""),
    ]
    decisions = decide(findings, settings)
    assert decisions[(1, None)] == Decision("drop", ("duplicate_prompt", "empty_or_broken"))
    outcomes = resolve_rows(decisions, protected={2})
    assert outcomes == {
        (1, None): {(1, None): "dropped"},
        (1, 1): {(1, 1): "dropped"},  # its row is dropped
        (2, 1): {(2, 1): "flagged_instead_of_dropped"},  # row 2 carries judgments
        (3, None): {(3, None): "flagged"},
    }
    assert flags_to_store(decisions, outcomes) == {
        (2, 1): {"rules": ["identical_candidates"], "instead_of_drop": True},
        (3, None): {"rules": ["duplicate_prompt"], "instead_of_drop": False},
    }


def test_tasks_take_their_prompts_and_candidates_actions_and_busy_tasks_are_flagged_instead():
    # A prompt (row 0) with candidates 0, 1, 2 as three pairwise tasks; candidate 2 copies candidate 0.
    decisions = {(0, 2): Decision("drop", ("identical_candidates",)), (1, None): Decision("keep", ("length_outlier",))}
    tasks = [(10, 0, [0, 1]), (11, 0, [0, 2]), (12, 0, [1, 2]), (13, 1, [0, 1])]
    outcomes = resolve_tasks(decisions, tasks, busy={12})
    assert outcomes == {(0, 2): {11: "dropped", 12: "flagged_instead_of_dropped"}, (1, None): {13: "kept"}}
    assert flags_to_store(decisions, outcomes) == {(0, 2): {"rules": ["identical_candidates"], "instead_of_drop": True}}


def test_the_report_counts_each_rule_and_shows_examples_and_a_table():
    settings = HygieneSettings(examples=1)
    rows = [row("What is 2+2?", "4", "4", label="row 0"), row("what is 2+2?", "four", label="row 1")]
    findings = [Finding("identical_candidates", 0, 1, "candidate 1 is the same as candidate 0")]
    findings += [Finding("duplicate_prompt", 1, None, "same prompt as row 0")]
    decisions = decide(findings, settings)
    outcomes = resolve_rows(decisions, protected=set())
    report = build_report(rows, findings, outcomes, settings, units="rows and candidates", campaign="c")
    assert report["rules"]["identical_candidates"] | {"examples": None} == {
        "action": "drop",
        "found": 1,
        "kept": 0,
        "flagged": 0,
        "dropped": 1,
        "flagged_instead_of_dropped": 0,
        "examples": None,
    }
    assert report["rules"]["duplicate_prompt"]["examples"] == [
        {"where": "row 1", "candidate": None, "detail": "same prompt as row 0", "text": "what is 2+2?"}
    ]
    assert report["totals"] == {"kept": 0, "flagged": 1, "dropped": 1, "flagged_instead_of_dropped": 0}
    assert report["findings"][0]["outcome"] == {"dropped": 1} and report["campaign"] == "c"
    lines = table(report).splitlines()
    assert lines[0].split() == ["rule", "action", "found", "kept", "flagged", "dropped", "flag", "not", "drop"]
    assert lines[2].split() == ["duplicate_prompt", "flag", "1", "0", "1", "0", "0"]
    assert lines[-1].split()[-4:] == ["0", "1", "1", "0"]
