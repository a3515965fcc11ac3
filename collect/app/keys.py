"""The keyboard of the rater page: which key answers what, the labels that show it, and the script that listens.

Every answer has a key shown on its button, so a rater can judge without the mouse. Rate
tab: 1-7 the pairwise scale (1 = A much better ... 7 = B much better), 0 both bad, S skip,
U undo, Enter submits a ranking or rating, A and B start an improved response from that
response's text. Arena tab: A, B, T (tie), X (both bad). Escape leaves a text field so the
keys work again. Tabs that are not shown stay in the page, so a key presses only a button
that is visible: one key can mean different things on different tabs.
"""

from collect.domain.answers import ARENA_VOTES, BOTH_BAD_CHOICE, PAIRWISE_SCALE

SEPARATOR = " · "
CHOICE_KEYS = [(str(i), label) for i, (label, _) in enumerate(PAIRWISE_SCALE, start=1)] + [("0", BOTH_BAD_CHOICE)]
SKIP_KEY, UNDO_KEY, SUBMIT_KEY = "S", "U", "Enter"
EDIT_KEYS = ("A", "B")  # start the improved response from response A's or B's text
ARENA_KEYS = list(zip("ABTX", ARENA_VOTES))  # A is better, B is better, Tie, Both bad
TAB_KEYS = {
    "rate": [key for key, _ in CHOICE_KEYS] + [SKIP_KEY, UNDO_KEY, SUBMIT_KEY, *EDIT_KEYS],
    "arena": [key for key, _ in ARENA_KEYS],
}


def button_label(key: str, action: str) -> str:
    """The text of a button: its key, then what it does (e.g. `3 · A slightly better`)."""
    return f"{key}{SEPARATOR}{action}"


def action_of(label: str) -> str:
    """What a button labelled by `button_label` does; `ValueError` for any other text."""
    key, separator, action = label.partition(SEPARATOR)
    if not separator or (key, action) not in CHOICE_KEYS:
        raise ValueError(f"not an answer button: {label!r}")
    return action


def element_id(key: str, tab: str = "rate") -> str:
    """The DOM id of the button a key presses on `tab` (rate or arena)."""
    return f"plumb-key-{key.lower()}" if tab == "rate" else f"plumb-{tab}-key-{key.lower()}"


def keyboard_script() -> str:
    """A `<script>` for the page head: a key press clicks its visible button, except while the rater types."""
    ids = {}
    for tab, keys in TAB_KEYS.items():
        for key in keys:
            ids.setdefault(key.lower(), []).append(element_id(key, tab))
    table = ", ".join(f'"{key}": [{", ".join(chr(34) + i + chr(34) for i in group)}]' for key, group in ids.items())
    return f"""<script>
document.addEventListener("keydown", (event) => {{
  const target = event.target;
  const choosing = target && target.tagName === "INPUT" && ["radio", "checkbox"].includes(target.type);
  const editable = target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  const typing = editable && !choosing;
  if (typing && event.key === "Escape") {{ target.blur(); return; }}
  if (typing || event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  const shown = (button) =>
    button && (button.checkVisibility ? button.checkVisibility() : button.offsetParent !== null);
  const button = (({{{table}}})[event.key.toLowerCase()] || [])
    .map((id) => document.getElementById(id)).find(shown);
  if (button && !button.disabled) {{ event.preventDefault(); button.click(); }}
}});
</script>"""
