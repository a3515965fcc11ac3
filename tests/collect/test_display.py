"""Model output on the page: `safe_markdown` leaves no way for HTML, images or script links out of the text;
a pre-label shows only its label, escaped, and a whole percentage."""

import re

import pytest

from collect.app.display import ZWSP, prelabel_after_vote_line, prelabel_line, safe_markdown
from tests.support.attacks import TRICKS


@pytest.mark.parametrize("text", TRICKS)
def test_no_tag_image_or_script_link_can_come_out(text):
    shown = safe_markdown(text)
    assert not re.search(r"<[A-Za-z!/?]", shown)  # nothing can open a tag, comment or declaration
    assert not re.search(r"&(#|[A-Za-z][A-Za-z0-9]*;)", shown)  # nor an entity
    assert "![" not in shown  # nor an image
    assert not re.search(r"(?i)(javascript|vbscript|data|file)\s*:", shown)
    typed = shown.replace(ZWSP, "")
    assert typed == text or re.fullmatch(r"\n(`{3,}|~{3,})", typed.removeprefix(text))  # as typed (+ a closing fence)


def test_code_stays_code_and_a_cut_off_fence_is_closed():
    code = "Use:\n```python\nif a < b and c & d:\n    print('<b>')\n```\nDone."
    assert safe_markdown(code).replace(ZWSP, "") == code
    cut = "Here:\n```python\nprint(1)"  # an answer cut at max_new_tokens inside its code
    assert safe_markdown(cut) == cut + "\n```"
    assert safe_markdown("plain 2 < 3 & 4 > 1") == "plain 2 < 3 & 4 > 1"  # nothing to guard: untouched


def test_a_pre_label_reads_as_the_models_suggestion_with_a_whole_percentage():
    line = prelabel_line({"label": "B", "confidence": 0.8762})
    assert line.startswith("Model's guess: B is better (88% sure).") and "suggestion" in line
    assert prelabel_after_vote_line({"label": "A", "confidence": 0.5}) == "The model's guess on that one: A (50% sure)."
    assert prelabel_line({"label": "<b>", "confidence": 1.0}).startswith("Model's guess: &lt;b&gt; is better (100%")
    with pytest.raises(ValueError):  # only a number is shown as the confidence
        prelabel_line({"label": "A", "confidence": "<img src=x>"})
