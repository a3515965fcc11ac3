"""How stored messages are shown on the rater page: model output as text, never as HTML.

Gradio sanitizes the Markdown it renders, but it still renders `<img>` and other tags
found in the text (DESIGN.md), and model output is untrusted. So the chat (a Chatbot with
Markdown off, which still renders HTML) gets the prompt with every `<`, `>` and `&`
escaped, and shows it exactly as typed; responses go into read-only text boxes, which
show characters and cannot render anything.
"""

import html


def escaped_chat(messages: list[dict]) -> list[dict]:
    """A message list for `gr.Chatbot`, its text HTML-escaped so every tag shows as typed."""
    return [{"role": _chat_role(m.get("role", "user")), "content": html.escape(_text(m.get("content", "")))}
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
