"""How stored messages are shown on the rater page: model output as Markdown whose HTML shows as text.

Model output is untrusted. Gradio sanitizes the Markdown it renders, but it still renders
`<img>` and other tags it lets through (DESIGN.md). So `safe_markdown` escapes every `<`
and `&` outside code (inside code the Markdown renderer escapes them itself, and code
keeps its highlighting), turns images into links so nothing is fetched, and unlinks any
link whose target is not http(s), mailto or the page itself (`javascript:`, `data:`...).
Gradio's sanitizer stays on as a second layer.
"""

import html
import re

# A fenced code block opens with 3+ backticks or tildes (up to 3 spaces in) and closes with the same run or longer.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_INLINE_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(\s*<?([^)\s>]*)")
_REFERENCE = re.compile(r"^( {0,3})\[([^\]\n]+)\]:\s*<?(\S*)", re.MULTILINE)
_SAFE_TARGET = re.compile(r"^(https?:|mailto:|#|/(?!/)|$)", re.IGNORECASE)


def safe_markdown(text: str) -> str:
    """Markdown for `gr.Markdown`/`gr.Chatbot` that shows every piece of HTML in `text` as typed and runs none."""
    out, prose, fence = [], [], None
    for line in text.splitlines(keepends=True):
        opening = _FENCE.match(line)
        if fence is None and opening:
            out.append(_safe_prose("".join(prose)))
            prose, fence = [], opening.group(1)
            out.append(line)
        elif fence is not None:
            out.append(line)
            closing = _FENCE.match(line)
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence) \
                    and not line.strip()[len(closing.group(1)):]:
                fence = None
        else:
            prose.append(line)
    # An unclosed fence runs to the end, as in the renderer: a streamed answer is often cut inside one.
    out.append(_safe_prose("".join(prose)))
    return "".join(out)


def _safe_prose(text: str) -> str:
    pieces, start = [], 0
    for span in _CODE_SPAN.finditer(text):
        pieces.append(_escape(text[start:span.start()]))
        pieces.append(span.group(0))  # the renderer shows code spans literally
        start = span.end()
    pieces.append(_escape(text[start:]))
    return "".join(pieces)


def _escape(text: str) -> str:
    # `>` stays: it starts a quote in Markdown and cannot open a tag on its own.
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    text = _INLINE_LINK.sub(_defuse_link, text)
    return _REFERENCE.sub(lambda m: m.group(0) if _SAFE_TARGET.match(m.group(3)) else m.group(1) + "\\" +
                          m.group(0)[len(m.group(1)):], text)


def _defuse_link(match: re.Match) -> str:
    bang, label, target = match.groups()
    rest = match.group(0)[len(bang):]
    if not _SAFE_TARGET.match(target):
        return bang + "\\" + rest  # "\[" is a literal bracket: the link shows as text
    return rest  # an image becomes a link to it, so showing a response fetches nothing


def escaped_chat(messages: list[dict]) -> list[dict]:
    """A message list for `gr.Chatbot` (Markdown on), its text through `safe_markdown` so every tag shows as typed."""
    return [{"role": _chat_role(m.get("role", "user")), "content": safe_markdown(_text(m.get("content", "")))}
            for m in messages]


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
    """One line of progress: judged today, judged in this campaign, tasks left in the pool."""
    return (f"**{progress['today']}** judged today · **{progress['campaign']}** in this campaign · "
            f"**{progress['left']}** tasks left in the pool")


def overview_markdown(stats: dict, per_rater: dict[str, int]) -> str:
    """The campaign's progress as a Markdown table, then live judgments per rater (names escaped)."""
    rows = [("tasks", stats["tasks"]), ("gold tasks", stats["gold_tasks"]), ("complete tasks", stats["complete_tasks"]),
            ("live judgments", stats["judgments"]), ("raters who judged", stats["raters"])]
    lines = [f"### Campaign `{html.escape(stats['campaign'])}`", "", "| | count |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "| rater | judgments |", "|---|---:|"]
    lines += [f"| {html.escape(name)} | {count} |" for name, count in sorted(per_rater.items())]
    return "\n".join(lines)
