"""The reviewer's tab: the disagreement queue, oldest first, and the reviewer's decision on each task.

The reviewer sees the prompt, the candidates lettered A, B, ... in the task's canonical
order with their policies, every rater's answer on those letters with rationale, flags,
time and edit, and answers with the campaign's own controls plus a note. Model output
and everything raters typed is shown through `safe_markdown` or escaped: it never runs
as HTML. The logic lives in `collect.services.adjudication`; every call checks the role there.
"""

import html

import gradio as gr

from collect.app.display import escaped_chat, response_text, safe_markdown
from collect.app.errors import keeps_form
from collect.domain.answers import choices
from collect.domain.campaign import CampaignSpec
from collect.services import adjudication

SLOTS = adjudication.LETTERS


def create_review_tab(sessions, campaign: str, spec: CampaignSpec) -> dict[str, gr.components.Component]:
    """Lay out the review queue for campaign `spec`'s kind and bind its events; components by name."""
    c = {}
    with gr.Row():
        c["status"] = gr.Markdown(
            "Load the queue to see the tasks whose raters disagree, and judged tasks flagged by data hygiene.",
            elem_id="plumb-review-status",
        )
        c["load"] = gr.Button("Load queue", size="sm", elem_id="plumb-review-load", scale=0)
    c["message"] = gr.Markdown(elem_id="plumb-review-message")
    c["prompt"] = gr.Chatbot(
        label="Conversation",
        height=220,
        elem_id="plumb-review-prompt",
        sanitize_html=True,
        feedback_options=None,
        group_consecutive_messages=False,
    )
    c["candidates"] = gr.Markdown(elem_id="plumb-review-candidates")
    c["answers"] = gr.Markdown(elem_id="plumb-review-answers")
    gr.Markdown("### Your decision")
    if spec.kind == "pairwise":
        labels = choices(allow_both_bad=spec.allow_both_bad)
        c["choice"] = gr.Radio(labels, label="Which is better (letters as above)", elem_id="plumb-review-choice")
    else:
        with gr.Row():
            for letter in SLOTS:
                c[f"score_{letter}"] = gr.Radio([], label=letter, visible=False, elem_id=f"plumb-review-score-{letter}")
    c["note"] = gr.Textbox(label="Note (why; kept with the decision)", lines=2, elem_id="plumb-review-note")
    with gr.Row():
        c["save"] = gr.Button("Save decision", variant="primary", size="sm", elem_id="plumb-review-save")
        c["pass"] = gr.Button("Put off", size="sm", elem_id="plumb-review-pass")
    _bind(sessions, campaign, c)
    return c


def _bind(sessions, campaign: str, c: dict) -> None:
    state = gr.State({})  # {"task_id": shown task or None, "passed": task ids put off, "candidates": count}
    scores = [c[name] for name in c if name.startswith("score_")]
    outputs = [state, *(component for name, component in c.items() if name not in ("load", "pass"))]

    def shown(page, passed) -> dict:
        return {
            state: {
                "task_id": page.item.task_id if page.item else None,
                "passed": passed,
                "candidates": len(page.item.candidates) if page.item else 0,
            },
            **review_values(page, c),
        }

    def on_load(request: gr.Request):
        return shown(adjudication.next_review(sessions, campaign=campaign, reviewer_name=request.username), [])

    def saved(old: dict, note: str, reviewer_name: str, *, choice=None, scores=None) -> dict:
        page = adjudication.submit_adjudication(
            sessions,
            campaign=campaign,
            reviewer_name=reviewer_name,
            task_id=old.get("task_id"),
            choice=choice,
            scores=scores,
            note=note or "",
            passed=old.get("passed", []),
        )
        return shown(page, old.get("passed", []))

    def on_save_choice(old: dict, choice: str | None, note: str, request: gr.Request):
        return saved(old, note, request.username, choice=choice)

    # The request comes first: Gradio passes it by position, and only before a `*scores` parameter.
    def on_save_scores(request: gr.Request, old: dict, note: str, *scores):
        return saved(old, note, request.username, scores=list(scores)[: old.get("candidates", len(scores))] or None)

    def on_pass(old: dict, request: gr.Request):
        passed = old.get("passed", []) + ([old["task_id"]] if old.get("task_id") is not None else [])
        page = adjudication.next_review(
            sessions,
            campaign=campaign,
            reviewer_name=request.username,
            passed=passed,
            message="Put off until you reload the queue.",
        )
        return shown(page, passed)

    # A decision saved with nothing chosen is a mistake: it is said, and the form stays as it was.
    c["load"].click(keeps_form(on_load, outputs), outputs=outputs, api_name="review_next")
    if "choice" in c:
        inputs, on_save = [state, c["choice"], c["note"]], on_save_choice
    else:
        inputs, on_save = [state, c["note"], *scores], on_save_scores
    c["save"].click(keeps_form(on_save, outputs), inputs=inputs, outputs=outputs, api_name="adjudicate")
    c["pass"].click(keeps_form(on_pass, outputs), inputs=[state], outputs=outputs, api_name="review_pass")


def review_values(page: adjudication.ReviewPage, c: dict) -> dict:
    """New values for the tab's components from a `ReviewPage`; the answer controls are cleared."""
    item = page.item
    values = {
        c["status"]: f"**{page.waiting}** task{'s' if page.waiting != 1 else ''} waiting for review"
        + (f" · task {item.task_id}" if item else ""),
        c["message"]: html.escape(page.message),
        c["note"]: "",
        c["prompt"]: escaped_chat(item.prompt) if item else [],
        c["candidates"]: candidates_markdown(item) if item else "",
        c["answers"]: answers_markdown(item) if item else "",
    }
    if "choice" in c:
        values[c["choice"]] = gr.Radio(value=None)
    for index, letter in enumerate(SLOTS):
        if f"score_{letter}" in c:
            visible = item is not None and index < len(item.candidates)
            name = "rank (1 = best)" if item and item.kind == "ranking" else "rating"
            values[c[f"score_{letter}"]] = gr.Radio(
                choices=item.score_choices if item else [], value=None, visible=visible, label=f"{letter}: {name}"
            )
    values[c["save"]] = gr.Button(interactive=item is not None)
    return values


def candidates_markdown(item: adjudication.ReviewItem) -> str:
    """The candidates as Markdown sections (letter, policy, the response as safe Markdown), after a warning when
    data hygiene flagged the task's prompt or a candidate for reviewers."""
    warning = []
    if item.hygiene:
        rules = ", ".join(f"`{rule}`" for rule in item.hygiene)
        warning = [f"**Flagged on import by data hygiene:** {rules}. Check the prompt and the answers before deciding."]
    sections = [
        f"#### {candidate['letter']} · policy `{html.escape(candidate['policy'])}`\n\n"
        f"{safe_markdown(response_text(candidate['completion']))}"
        for candidate in item.candidates
    ]
    return "\n\n---\n\n".join(warning + sections)


def answers_markdown(item: adjudication.ReviewItem) -> str:
    """Each rater's answer, rationale, flags and seconds as a table, then any edits they wrote."""
    lines = [
        "#### The raters' answers",
        "",
        "| rater | answer | rationale | flags | seconds |",
        "|---|---|---|---|---:|",
    ]
    for answer in item.answers:
        seconds = f"{answer['seconds']:.0f}" if answer["seconds"] is not None else ""
        cells = [answer["rater"], answer["answer"], answer["rationale"], ", ".join(answer["flags"])]
        lines.append("| " + " | ".join(_cell(text) for text in cells) + f" | {seconds} |")
    for answer in item.answers:
        if answer["edit"]:
            lines += ["", f"**{_cell(answer['rater'])}'s improved response:**", "", safe_markdown(answer["edit"])]
    return "\n".join(lines)


def _cell(text: str) -> str:
    # One table cell: escaped, on one line, and no `|` that would end the cell early.
    return html.escape(" ".join(text.split())).replace("|", "\\|")
