"""The keyboard of the rater page: which key answers what, the labels that show it, and the script that listens.

Every answer has a key shown on its button, so a rater can judge without the mouse:
1-7 the pairwise scale (1 = A much better ... 7 = B much better), 0 both bad, S skip, U undo,
Enter submits a ranking or rating, A and B start an improved response from that response's text,
and Escape leaves a text field so the keys work again. A key presses only a button that
is on screen, so the tabs that are not shown keep their keys to themselves.
"""

from collect.campaign import BOTH_BAD, PAIRWISE_SCALE

SEPARATOR = " · "
CHOICE_KEYS = [(str(i), label) for i, (label, _) in enumerate(PAIRWISE_SCALE, start=1)] + [("0", BOTH_BAD)]
SKIP_KEY, UNDO_KEY, SUBMIT_KEY = "S", "U", "Enter"
EDIT_KEYS = ("A", "B")  # start the improved response from response A's or B's text


def button_label(key: str, action: str) -> str:
    """The text of a button: its key, then what it does (e.g. `3 · A slightly better`)."""
    return f"{key}{SEPARATOR}{action}"


def action_of(label: str) -> str:
    """What a button labelled by `button_label` does; `ValueError` for any other text."""
    key, separator, action = label.partition(SEPARATOR)
    if not separator or (key, action) not in CHOICE_KEYS:
        raise ValueError(f"not an answer button: {label!r}")
    return action


def element_id(key: str) -> str:
    """The DOM id of the button a key presses."""
    return f"plumb-key-{key.lower()}"


def keyboard_script() -> str:
    """A `<script>` for the page head: a key press clicks its button, except while the rater types in a text field."""
    keys = [key for key, _ in CHOICE_KEYS] + [SKIP_KEY, UNDO_KEY, SUBMIT_KEY, *EDIT_KEYS]
    ids = ", ".join(f'"{key.lower()}": "{element_id(key)}"' for key in keys)
    return f"""<script>
document.addEventListener("keydown", (event) => {{
  const target = event.target;
  const choosing = target && target.tagName === "INPUT" && ["radio", "checkbox"].includes(target.type);
  const editable = target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  const typing = editable && !choosing;
  if (typing && event.key === "Escape") {{ target.blur(); return; }}
  if (typing || event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  const id = ({{{ids}}})[event.key.toLowerCase()];
  const button = id && document.getElementById(id);
  const onScreen = button && button.offsetParent !== null;
  if (onScreen && !button.disabled) {{ event.preventDefault(); button.click(); }}
}});
</script>"""
