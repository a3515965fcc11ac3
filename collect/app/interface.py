"""The rater app assembled: tabs from their layout functions, events bound to `collect.app.handlers`.

Nothing lives in module globals: the store's sessions and the campaign name are captured by
the event functions of one `create_ui` call, and each browser session keeps its current
assignment in a `gr.State`, which stays on the server. Who is logged in comes from
Gradio's login (`gr.Request.username`), never from the page.
"""

import html
import time

import gradio as gr
from starlette.routing import Mount

from collect.app import handlers
from collect.app.admin_tab import create_admin_tab, create_export_tab
from collect.app.arena_tab import create_arena_tab
from collect.app.campaign_tab import create_campaign_tab
from collect.app.errors import shown_as_error
from collect.app.guards import PageGuard
from collect.app.keys import EDIT_KEYS, action_of, keyboard_script
from collect.app.login import LoginGuard, LoginThrottle, StoredLogins, password_check
from collect.app.rater_tab import RATER_CSS, choice_buttons, create_rater_tab, page_values, score_inputs
from collect.app.review_tab import create_review_tab
from collect.domain.campaign import spec_of
from collect.store import campaign_by_name
from collect.store.limits import SECONDS_SPENT_MAX
from collect.store.web_sessions import SessionLimits


def create_ui(sessions, campaign: str, *, output_dir: str | None = None, models=None) -> gr.Blocks:
    """The Blocks app for rating `campaign` (pairwise, ranking or rating) on the store `sessions`.

    Exports made from the admin tab go under `output_dir` (a temporary directory when None);
    the arena answers with the local models of `models` (a `plumb.generation.LoadedModels`).
    """
    with sessions.begin() as session:
        spec = spec_of(campaign_by_name(session=session, name=campaign))
    with gr.Blocks(title=f"Plumb · {campaign}") as ui:
        state = gr.State({})  # {"assignment_id", "responses": count, "texts": responses shown, "shown_at": monotonic}
        header = gr.Markdown(elem_id="plumb-header")
        with gr.Tabs():
            with gr.Tab("Rate"):
                rate = create_rater_tab(spec)
            # Battles need two policies to answer live, and are pairwise: a ranking campaign has no arena.
            with gr.Tab("Arena", visible=spec.arena and spec.kind == "pairwise" and len(spec.policies) >= 2):
                create_arena_tab(sessions, campaign, spec, models)
            # Hidden until the login says the role; every handler behind them checks the role again.
            with gr.Tab("Campaign", visible=False) as staff_tab:
                create_campaign_tab(sessions, campaign)
            with gr.Tab("Review", visible=False) as review_tab:
                create_review_tab(sessions, campaign, spec)
            # Opening a staff tab loads what it shows, as its button does: no tab sits empty until a click.
            review_tab.select(None, js=_click("plumb-review-load"))
            staff_tab.select(None, js=_click("plumb-campaign-refresh"))
            with gr.Tab("Export", visible=False) as export_tab:
                create_export_tab(sessions, campaign, output_dir)
            with gr.Tab("Admin", visible=False) as admin_tab:
                create_admin_tab(sessions, campaign)
            admin_tab.select(None, js=_click("plumb-admin-list"))
        staff = handlers.STAFF_ROLES
        role_tabs = {staff_tab: staff, review_tab: staff, export_tab: staff, admin_tab: ("admin",)}
        _bind_rater_events(ui, sessions, campaign, state, rate, header=header, role_tabs=role_tabs)
    return ui


_FOCUS_EDIT = """() => {
  const box = document.querySelector('#plumb-edit textarea');
  if (box) { box.focus(); box.setSelectionRange(box.value.length, box.value.length); }
}"""
# System fonts: the page needs no font server, and a fallback for missing bold glyphs drew capitals lighter.
THEME_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]


def _click(element_id: str) -> str:
    return f"() => document.getElementById('{element_id}')?.click()"


def _bind_rater_events(ui, sessions, campaign: str, state, rate: dict, *, header, role_tabs: dict) -> None:
    page_outputs = [state, *rate.values()]

    def on_load(old_state: dict, request: gr.Request):
        # A store error here is e.g. an account deactivated while its page was open.
        page = shown_as_error(handlers.show_next, sessions, campaign=campaign, rater_name=request.username)
        role = shown_as_error(handlers.role_of, sessions, request.username)
        return {
            state: shown(page, old_state),
            **page_values(page, rate),
            header: f"Signed in as **{html.escape(request.username)}** ({role}) · campaign `{campaign}`",
            **{tab: gr.Tab(visible=role in roles) for tab, roles in role_tabs.items()},
        }

    def answered(page, old_state: dict) -> dict:
        # The same task back (an answer refused with a reason) keeps what the rater typed and chose.
        same = page.assignment_id is not None and page.assignment_id == old_state.get("assignment_id")
        return {state: shown(page, old_state), **page_values(page, rate, keep_answers=same)}

    def judged(old_state: dict, label: str, rationale: str, flags: list[str], edit: str, rater_name: str) -> dict:
        page = handlers.judge(
            sessions,
            campaign=campaign,
            rater_name=rater_name,
            assignment_id=old_state.get("assignment_id"),
            choice=action_of(label),
            rationale=rationale or "",
            flags=flags,
            seconds_spent=_seconds_on(old_state),
            edit=edit or "",
        )
        return answered(page, old_state)

    def on_judge(old_state: dict, label: str, rationale: str, flags: list[str], request: gr.Request):
        return judged(old_state, label, rationale, flags, "", request.username)

    def on_judge_with_edit(
        old_state: dict, label: str, rationale: str, flags: list[str], edit: str, request: gr.Request
    ):
        return judged(old_state, label, rationale, flags, edit, request.username)

    def on_score(inputs: dict, request: gr.Request):
        old_state = inputs[state]
        page = handlers.score(
            sessions,
            campaign=campaign,
            rater_name=request.username,
            assignment_id=old_state.get("assignment_id"),
            scores=[inputs[radio] for radio in score_inputs(rate)][: old_state.get("responses", 0)],
            rationale=inputs[rate["rationale"]] or "",
            flags=inputs[rate["flags"]],
            seconds_spent=_seconds_on(old_state),
        )
        return answered(page, old_state)

    def on_skip(old_state: dict, request: gr.Request):
        page = handlers.skip(
            sessions, campaign=campaign, rater_name=request.username, assignment_id=old_state.get("assignment_id")
        )
        return answered(page, old_state)

    def on_undo(old_state: dict, request: gr.Request):
        page = handlers.undo(sessions, campaign=campaign, rater_name=request.username)
        return answered(page, old_state)

    ui.load(
        on_load,
        inputs=[state],
        outputs=[*page_outputs, header, *role_tabs],
        show_progress="hidden",
        api_name="show_task",
    )
    edit = [rate["edit"]] if "edit" in rate else []
    for index, button in enumerate(choice_buttons(rate)):
        button.click(
            on_judge_with_edit if edit else on_judge,
            inputs=[state, button, rate["rationale"], rate["flags"], *edit],
            outputs=page_outputs,
            show_progress="hidden",  # the next task shows in a fraction of a second; a badge would only flash
            api_name="judge" if index == 0 else f"judge_{index}",
            api_visibility="public" if index == 0 else "undocumented",
        )
    if "submit" in rate:
        rate["submit"].click(
            on_score,
            inputs={state, rate["rationale"], rate["flags"], *score_inputs(rate)},
            outputs=page_outputs,
            show_progress="hidden",
            api_name="submit",
        )
    rate["skip"].click(on_skip, inputs=[state], outputs=page_outputs, show_progress="hidden", api_name="skip")
    for index, key in enumerate(EDIT_KEYS):
        if f"copy_{key}" in rate:
            rate[f"copy_{key}"].click(
                lambda old_state, typed, index=index: start_from(old_state, typed, index),
                inputs=[state, rate["edit"]],
                outputs=rate["edit"],
                show_progress="hidden",
                api_visibility="private",
                # Into the box, at the end of the text: the next keys type there instead of answering.
            ).then(None, js=_FOCUS_EDIT, show_progress="hidden")
    rate["undo"].click(on_undo, inputs=[state], outputs=page_outputs, show_progress="hidden", api_name="undo")


def start_from(old_state: dict, typed: str, index: int) -> str:
    """The improved-response box after "Start from" response `index`: its stored text (not as rendered), unless the
    rater has already written something of their own there, which is kept."""
    texts = old_state.get("texts") or []
    if typed.strip() and typed not in texts:
        return typed
    return texts[index] if index < len(texts) else typed


def shown(page, old_state: dict) -> dict:
    """The session state after showing `page`: its assignment, how many responses, and when it first appeared."""
    # The clock of a judgment starts when its task first appears, not when it reappears after an error.
    if page.assignment_id is not None and page.assignment_id == old_state.get("assignment_id"):
        return old_state
    return {
        "assignment_id": page.assignment_id,
        "responses": len(page.responses),
        "texts": page.responses,
        "shown_at": time.monotonic(),
    }


def _seconds_on(old_state: dict) -> float | None:
    started = old_state.get("shown_at")
    # Capped: a tab left open for days is still an answer to store, not a limit to refuse.
    return min(time.monotonic() - started, SECONDS_SPENT_MAX) if started is not None else None


def mount(
    app,
    sessions,
    campaign: str,
    *,
    path: str = "/",
    output_dir: str | None = None,
    models=None,
    session_limits: SessionLimits | None = None,
):
    """Mount the rater app for `campaign` on the FastAPI `app`, behind a login with the store's rater accounts.

    Sign-ins are throttled per account and per client address; page sessions are stored and
    expire after `session_limits` (idle and absolute).
    """
    accounts = LoginThrottle(max_failures=5)
    mounted = gr.mount_gradio_app(
        app,
        create_ui(sessions, campaign, output_dir=output_dir, models=models),
        path=path,
        auth=password_check(sessions, accounts),
        auth_message="Sign in with your Plumb rater account.",
        head=keyboard_script(),
        css=RATER_CSS,
        theme=gr.themes.Default(font=THEME_FONTS, font_mono=["ui-monospace", "Menlo", "Consolas", "monospace"]),
        footer_links=[],
    )
    gradio_app = next(route.app for route in app.routes if isinstance(route, Mount) and route.path == path.rstrip("/"))
    gradio_app.tokens = StoredLogins(sessions, session_limits or SessionLimits())
    app.add_middleware(LoginGuard, throttle=LoginThrottle(max_failures=20))
    app.add_middleware(PageGuard, sessions=sessions, gradio_app=gradio_app)
    return mounted
