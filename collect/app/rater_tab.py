"""The rater's tab: guidelines, the prompt as chat, the responses side by side, the answer controls, progress.

Pairwise tasks get the 7-point scale and "both bad" as buttons with their keys; ranking
and rating tasks get one choice per response (its rank, or its Likert score) and a
submit button (Enter). A campaign with `prelabels: shown` also gets the model's guess, a
small line under the answer buttons (`after_vote` names it in the saved message instead,
`hidden` never). `create_rater_tab` only lays components out; `page_values` turns
a `handlers.RaterPage` into their new values. The wiring lives in `collect.app.interface`.
"""

import gradio as gr

from collect.app.display import prelabel_line, progress_markdown, safe_markdown
from collect.app.keys import CHOICE_KEYS, EDIT_KEYS, SKIP_KEY, SUBMIT_KEY, UNDO_KEY, button_label, element_id
from collect.domain.answers import BOTH_BAD_CHOICE
from collect.domain.campaign import CampaignSpec
from collect.store.limits import EDIT_MAX_CHARS, RATIONALE_MAX_CHARS

SLOTS = "ABCDEFGH"  # the most responses one ranking or rating task shows
DONE_TEXT = (
    "### You are done for now\n"
    "Every task you can judge in this campaign has its judgments, and yours are saved. "
    "New tasks appear here as the campaign gets new answers to judge: reload the page later. "
    f"Within the campaign's undo window you can still take back your last judgment ({UNDO_KEY} · Undo last)."
)
# Responses are what raters read all day: framed panes of equal height whose text starts at the top (a short answer
# is not centred against a long one), stacked on a narrow screen. Fonts are the system's: the page must not depend
# on a font server, and a fallback for missing bold glyphs drew capitals lighter than the rest of a bold word.
RATER_CSS = """
[id^=plumb-response-] {border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg);
                       padding: var(--spacing-lg); margin: 0 !important; flex-grow: 1;}
.plumb-response-title {flex: 0 0 auto !important;}
@media (max-width: 720px) { .plumb-responses {flex-direction: column;} }
#plumb-done {border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg);
             padding: var(--spacing-xl);}
#plumb-prelabel, #plumb-prelabel .prose, #plumb-prelabel p {font-size: var(--text-sm); font-style: italic; margin: 0;}
#plumb-prelabel {opacity: 0.75;}
"""


def create_rater_tab(spec: CampaignSpec) -> dict[str, gr.components.Component]:
    """Lay out the rater page for campaign `spec` (its kind decides the answer controls); components by name.

    Top to bottom: the conversation, the responses, the answer buttons, rationale and flags, skip and undo, so
    every control of a judgment is in view on a laptop screen; the optional improved response comes last.
    """
    components = {}
    with gr.Accordion("Guidelines", open=False):
        gr.Markdown(spec.guidelines or "Choose the better response.")
    components["progress"] = gr.Markdown(elem_id="plumb-progress")
    components["message"] = gr.Markdown(elem_id="plumb-message")
    # Not an output itself (only its column is): a component shown mid-event flashed Gradio's "processing" badge.
    with gr.Column(visible=False) as done:
        gr.Markdown(DONE_TEXT, elem_id="plumb-done")
    components["done"] = done
    with gr.Column(elem_id="plumb-task") as task_area:
        components["prompt"] = gr.Chatbot(
            label="Conversation",
            show_label=False,  # the label sat over the first turn
            min_height=60,
            max_height=360,  # sized to its turns up to this, then it scrolls
            height=None,
            elem_id="plumb-prompt",
            sanitize_html=True,
            buttons=["copy_all"],
            feedback_options=None,
            group_consecutive_messages=False,
        )
        if spec.kind == "pairwise":
            components.update(_pairwise_answers(spec))
        else:
            components.update(_scored_answers())
    components["task"] = task_area
    with gr.Row():
        with gr.Column(scale=5) as extras, gr.Row():
            components["rationale"] = gr.Textbox(
                label="Rationale (optional)" if spec.rationale == "optional" else "Rationale (required)",
                lines=1,
                max_lines=6,
                scale=3,
                max_length=RATIONALE_MAX_CHARS,
                visible=spec.rationale != "off",
                elem_id="plumb-rationale",
            )
            components["flags"] = gr.CheckboxGroup(
                spec.flags, label="Flags", scale=2, visible=bool(spec.flags), elem_id="plumb-flags"
            )
        components["extras"] = extras
        # Outside the task's area: undo stays at hand when nothing is left.
        with gr.Column(scale=1, min_width=150):
            if spec.kind != "pairwise":
                components["submit"] = gr.Button(
                    button_label(SUBMIT_KEY, "Submit"), elem_id=element_id(SUBMIT_KEY), variant="primary", size="sm"
                )
            components["skip"] = gr.Button(button_label(SKIP_KEY, "Skip"), elem_id=element_id(SKIP_KEY), size="sm")
            components["undo"] = gr.Button(button_label(UNDO_KEY, "Undo last"), elem_id=element_id(UNDO_KEY), size="sm")
    if spec.kind == "pairwise" and spec.allow_edits:
        components.update(_improve_box())
    return components


def _pairwise_answers(spec: CampaignSpec) -> dict:
    components = {}
    with gr.Row(equal_height=True, elem_classes="plumb-responses"):
        for label in SLOTS[:2]:
            with gr.Column(min_width=280):
                gr.Markdown(f"Response {label}", elem_classes="plumb-response-title")
                components[f"response_{label}"] = _response_box(label)
    choices = [(key, choice) for key, choice in CHOICE_KEYS if spec.allow_both_bad or choice != BOTH_BAD_CHOICE]
    with gr.Row():
        for key, choice in choices:
            components[f"choice_{key}"] = gr.Button(
                button_label(key, choice),
                elem_id=element_id(key),
                size="sm",
                min_width=110,  # the whole scale and "both bad" on one line of a laptop screen
                variant="secondary" if choice == BOTH_BAD_CHOICE else "primary",
            )
    # Only a campaign that shows the model's guess before the vote has a place for it: on a `hidden` or
    # `after_vote` campaign no component exists that could carry the guess to the page ahead of the rater's answer.
    if spec.prelabels == "shown":
        components["prelabel"] = gr.Markdown(elem_id="plumb-prelabel")
    return components


def _improve_box() -> dict:
    components = {}
    with gr.Row() as improve:
        # Written before the answer button is pressed, and stored with that answer.
        components["edit"] = gr.Textbox(
            label="Improve the better response (optional; Esc leaves the box)",
            lines=3,
            max_lines=20,
            max_length=EDIT_MAX_CHARS,
            scale=4,
            elem_id="plumb-edit",
        )
        with gr.Column(scale=1, min_width=160):
            for key in EDIT_KEYS:
                components[f"copy_{key}"] = gr.Button(
                    button_label(key, f"Start from {key}"), elem_id=element_id(key), size="sm"
                )
    components["improve"] = improve
    return components


def _scored_answers() -> dict:
    # As many slots as the largest task may need; `page_values` shows those the current task fills.
    components = {}
    with gr.Row(equal_height=True):
        for label in SLOTS:
            with gr.Column(visible=False, min_width=240) as column:
                gr.Markdown(f"Response {label}", elem_classes="plumb-response-title")
                components[f"response_{label}"] = _response_box(label)
                components[f"score_{label}"] = gr.Radio([], label=f"{label}: score", elem_id=f"plumb-score-{label}")
            components[f"slot_{label}"] = column
    return components


def _response_box(label: str) -> gr.Markdown:
    # Markdown with code highlighting; `page_values` passes the text through `safe_markdown` first.
    return gr.Markdown(elem_id=f"plumb-response-{label.lower()}", sanitize_html=True, max_height=360, min_height=80)


def choice_buttons(components: dict) -> list[gr.Button]:
    """The tab's pairwise answer buttons, in key order (none on a ranking or rating tab)."""
    return [component for name, component in components.items() if name.startswith("choice_")]


def score_inputs(components: dict) -> list[gr.Radio]:
    """The tab's per-response rank or rating choices, in slot order (none on a pairwise tab)."""
    return [component for name, component in components.items() if name.startswith("score_")]


def page_values(page, components: dict, *, keep_answers: bool = False) -> dict:
    """New values for the tab's components from a `RaterPage`; the rater's inputs (scores, rationale, flags, edit)
    are cleared for a new task, and kept with `keep_answers` (the same task is back with a reason to fix)."""
    has_task = page.assignment_id is not None
    values = {
        components["prompt"]: page.prompt,
        components["progress"]: progress_markdown(page.progress) if page.progress else "",
        components["message"]: page.message,
        # Nothing left: no empty boxes and greyed buttons, but a page that says so and what happens next.
        components["task"]: gr.Column(visible=has_task),
        components["extras"]: gr.Column(visible=has_task),
        components["done"]: gr.Column(visible=not has_task),
    }
    if "improve" in components:
        values[components["improve"]] = gr.Row(visible=has_task)
    if "prelabel" in components:  # small and secondary, under the buttons: a suggestion, not the question
        values[components["prelabel"]] = prelabel_line(page.prelabel) if has_task and page.prelabel else ""
    if not keep_answers:
        values.update({components["rationale"]: "", components["flags"]: []})
        if "edit" in components:
            values[components["edit"]] = ""
    for index, label in enumerate(SLOTS):
        shown = has_task and index < len(page.responses)
        if f"response_{label}" in components:
            values[components[f"response_{label}"]] = safe_markdown(page.responses[index]) if shown else ""
        if f"slot_{label}" in components:
            values[components[f"slot_{label}"]] = gr.Column(visible=shown)
            if not keep_answers:
                values[components[f"score_{label}"]] = gr.Radio(
                    choices=page.score_choices, value=None, label=f"{label}: {page.score_name}"
                )
    for button in choice_buttons(components):
        values[button] = gr.Button(interactive=has_task)
    for name in ("skip", "submit"):  # nothing to skip or submit: gone, not greyed
        if name in components:
            values[components[name]] = gr.Button(interactive=has_task, visible=has_task)
    return values
