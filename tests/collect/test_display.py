"""Model output on the page: `safe_markdown` leaves no way for HTML, images or script links out of the text."""

import re

import pytest

from collect.app.display import ZWSP, safe_markdown
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
