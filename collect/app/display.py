"""How stored messages are shown in the app: model output as Markdown whose HTML shows as text.

Model output is untrusted (and so is a rater's edit, which reviewers read). Gradio
sanitizes the Markdown it renders, but it still renders `<img>` and other tags it lets
through (a fact checked on these machines, in docs/design.md; README: "The rating app").
`safe_markdown` therefore makes sure no HTML can come out of the text at all, without
having to agree with the renderer on what is code and what is prose
(a disagreement there is how such filters are defeated): a zero-width space goes after
every `<` that could open a tag, comment or declaration, after every `&` that could start
an entity, between the `!` and `[` of image syntax, and before the colon of a
`javascript:`, `vbscript:`, `data:` or `file:` scheme. The text looks exactly as typed, code
keeps its highlighting, nothing is fetched and no script scheme is linked. Gradio's
sanitizer stays on as a second layer. Copying code that contains such a `<` copies the
invisible space too; "Start from A/B" and the exports use the stored text, not this.
"""

import html
import re

ZWSP = "\u200b"
_TAG_OPEN = re.compile(r"<(?=[A-Za-z!/?])")
_ENTITY = re.compile(r"&(?=#|[A-Za-z][A-Za-z0-9]{0,31};)")
_IMAGE = re.compile(r"!(?=\[)")
_SCRIPT_SCHEME = re.compile(r"(?<![A-Za-z])(javascript|vbscript|data|file)(?=\s*:)", re.IGNORECASE)
# Fences as the renderer opens and closes them, only to close one the text leaves open (a cut-off answer).
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def safe_markdown(text: str) -> str:
    """Markdown for `gr.Markdown`/`gr.Chatbot` that shows every piece of HTML in `text` as typed and runs none."""
    text = _TAG_OPEN.sub("<" + ZWSP, text)
    text = _ENTITY.sub("&" + ZWSP, text)
    text = _IMAGE.sub("!" + ZWSP, text)
    text = _SCRIPT_SCHEME.sub(lambda m: m.group(1) + ZWSP, text)
    fence = _open_fence(text)
    # Closed here, so text shown after this one (a reviewer sees several answers in one pane) is not taken as code.
    return f"{text}\n{fence}" if fence else text


def _open_fence(text: str) -> str | None:
    fence = None
    for line in text.splitlines():
        run = _FENCE.match(line)
        if run is None:
            continue
        marks = run.group(1)
        if fence is None:
            fence = marks
        elif marks[0] == fence[0] and len(marks) >= len(fence) and not line.strip()[len(marks) :]:
            fence = None
    return fence


def escaped_chat(messages: list[dict]) -> list[dict]:
    """A message list for `gr.Chatbot` (Markdown on), its text through `safe_markdown` so every tag shows as typed."""
    return [
        {"role": _chat_role(m.get("role", "user")), "content": safe_markdown(_text(m.get("content", "")))}
        for m in messages
    ]


def _chat_role(role: str) -> str:
    # Chatbot knows only user and assistant turns; a system prompt reads best as the user's framing.
    return "assistant" if role == "assistant" else "user"


def _text(content) -> str:
    # Content is a string, or a list of typed parts (OpenAI style) of which only the text is shown.
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))


def response_text(completion: list[dict]) -> str:
    """The plain text of a candidate (its assistant messages, one after the other)."""
    return "\n\n".join(_text(m.get("content", "")) for m in completion)


def progress_markdown(progress: dict) -> str:
    """One line of progress: judged today, judged in this campaign, tasks left for this rater, arena votes apart."""
    line = (
        f"**{progress['today']}** judged today · **{progress['campaign']}** in this campaign · "
        f"**{progress['left']}** left for you"
    )
    arena = progress.get("arena")
    return f"{line} · {arena} arena vote{'s' if arena != 1 else ''}" if arena else line


def overview_markdown(stats: dict, per_rater: dict[str, int]) -> str:
    """The campaign's progress as a Markdown table, then live judgments per rater (names escaped)."""
    rows = [
        ("tasks", stats["tasks"]),
        ("gold tasks", stats["gold_tasks"]),
        ("complete tasks", stats["complete_tasks"]),
        ("live judgments", stats["judgments"]),
        ("raters who judged", stats["raters"]),
    ]
    lines = [f"### Campaign `{html.escape(stats['campaign'])}`", "", "| | count |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "| rater | judgments |", "|---|---:|"]
    lines += [f"| {html.escape(name)} | {count} |" for name, count in sorted(per_rater.items())]
    return "\n".join(lines)


def prelabel_line(prelabel: dict) -> str:
    """The model's guess on the task shown, as one secondary line: the response it prefers (as this rater's label)
    and how sure it is, worded as a suggestion, not an instruction."""
    label, percent = _guess(prelabel)
    return f"Model's guess: {label} is better ({percent}% sure). A reward model's suggestion: your own judgment counts."


def prelabel_after_vote_line(prelabel: dict) -> str:
    """The model's guess on the task the rater has just answered, for the message that says the answer was saved."""
    label, percent = _guess(prelabel)
    return f"The model's guess on that one: {label} ({percent}% sure)."


def _guess(prelabel: dict) -> tuple[str, int]:
    # Only a label and a number reach the page: the label escaped like the names above, the confidence as a number
    # (float() refuses anything else), in whole percents because "87.63% sure" claims a precision it does not have.
    return html.escape(str(prelabel["label"])), round(float(prelabel["confidence"]) * 100)
