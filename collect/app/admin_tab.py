"""The admin tab: raters (add, change role, deactivate or reactivate, reset password), export and push to the Hub.

Admins only: the tab is hidden from everyone else, and every call checks the role again
in `collect.services.admin`, since a hidden tab is still callable through the Gradio API.
A generated password and a new rater's API token are shown once, in the message.
"""

import html
import json
import tempfile
from pathlib import Path

import gradio as gr

from collect.app.errors import keeps_form
from collect.services import admin
from collect.services.export.dataset import PushError
from collect.services.export.rows import FORMATS
from collect.store import ROLES
from collect.store.api_tokens import SCOPES

RATER_COLUMNS = ["name", "role", "active", "judgments"]


def create_admin_tab(sessions, campaign: str) -> dict[str, gr.components.Component]:
    """Lay out the admin tab (raters and their API tokens) and bind its events."""
    c = {}
    gr.Markdown("### Raters")
    c["raters"] = gr.Dataframe(headers=RATER_COLUMNS, interactive=False, elem_id="plumb-raters")
    with gr.Row():
        c["name"] = gr.Textbox(label="Name", elem_id="plumb-admin-name")
        c["role"] = gr.Dropdown(list(ROLES), value="rater", label="Role", elem_id="plumb-admin-role")
        c["password"] = gr.Textbox(
            label="Password (empty: generate one)", type="password", elem_id="plumb-admin-password"
        )
    with gr.Row():
        c["add"] = gr.Button("Add rater", variant="primary", size="sm", elem_id="plumb-admin-add")
        c["set_role"] = gr.Button("Change role", size="sm")
        c["deactivate"] = gr.Button("Deactivate", size="sm")
        c["reactivate"] = gr.Button("Reactivate", size="sm")
        c["reset"] = gr.Button("Reset password", size="sm")
        c["list"] = gr.Button("Refresh list", size="sm", elem_id="plumb-admin-list")
    with gr.Row():
        c["scopes"] = gr.CheckboxGroup(list(SCOPES), label="API token scopes (empty: all the role allows)")
        c["expires"] = gr.Textbox(label="API token expires (YYYY-MM-DD, UTC; empty: never)", elem_id="plumb-expires")
        c["new_token"] = gr.Button("New API token", size="sm", elem_id="plumb-new-token")
        c["revoke_tokens"] = gr.Button("Revoke API tokens", size="sm", elem_id="plumb-revoke-tokens")
    c["message"] = gr.Markdown(elem_id="plumb-admin-message")
    _bind_raters(sessions, campaign, c)
    return c


def create_export_tab(sessions, campaign: str, output_dir: str | None = None) -> dict[str, gr.components.Component]:
    """Lay out the export tab (reviewers and admins; pushing to the Hub is an admin's) and bind its events.

    Exports go under `output_dir`/exports (default: a temp dir).
    """
    output_root = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="plumb-exports-"))
    archive_dir = tempfile.mkdtemp(prefix="plumb-downloads-")  # under the temp dir Gradio serves files from
    c = {}
    gr.Markdown("### Export")
    with gr.Row():
        c["format"] = gr.Dropdown(list(FORMATS), value="pairwise", label="Format", elem_id="plumb-export-format")
        c["per_rater"] = gr.Checkbox(label="one row per rater")
        c["leaks"] = gr.Checkbox(label="battles: keep votes flagged 'identity leak'")
    with gr.Row():
        c["export"] = gr.Button("Export", variant="primary", size="sm", elem_id="plumb-export")
        c["repo"] = gr.Textbox(label="Hub dataset repo", placeholder="team/preferences", elem_id="plumb-push-repo")
        c["push"] = gr.Button("Push to Hub", size="sm", elem_id="plumb-push")
    c["export_status"] = gr.Markdown(elem_id="plumb-export-status")
    c["download"] = gr.File(label="exported dataset (zip)", interactive=False, elem_id="plumb-export-file")
    _bind_export(sessions, campaign, c, output_root=output_root, archive_dir=archive_dir)
    return c


def _bind_raters(sessions, campaign: str, c: dict) -> None:
    def table(admin_name: str) -> list[list]:
        rows = admin.rater_table(sessions=sessions, campaign=campaign, admin_name=admin_name)
        return [[row[column] for column in RATER_COLUMNS] for row in rows]

    def after(message: str, admin_name: str) -> tuple:
        return html.escape(message, quote=False), table(admin_name), ""  # the password box is emptied

    def on_list(request: gr.Request):
        return "", table(request.username), ""

    def on_add(name: str, role: str, password: str, request: gr.Request):
        return after(
            admin.add_rater(
                sessions=sessions,
                admin_name=request.username,
                name=name,
                role=role,
                password=password or None,
            ),
            request.username,
        )

    def on_set_role(name: str, role: str, request: gr.Request):
        return after(
            admin.change_role(sessions=sessions, admin_name=request.username, name=name, role=role),
            request.username,
        )

    def on_active(active: bool):
        def handler(name: str, request: gr.Request):
            return after(
                admin.change_active(sessions=sessions, admin_name=request.username, name=name, active=active),
                request.username,
            )

        return handler

    def on_reset(name: str, password: str, request: gr.Request):
        return after(
            admin.reset_password(
                sessions=sessions,
                admin_name=request.username,
                name=name,
                password=password or None,
            ),
            request.username,
        )

    def on_new_token(name: str, scopes: list[str], expires: str, request: gr.Request):
        message = admin.new_api_token(sessions, admin_name=request.username, name=name, scopes=scopes, expires=expires)
        return after(message, request.username)

    def on_revoke_tokens(name: str, request: gr.Request):
        message = admin.revoke_api_tokens(sessions, admin_name=request.username, name=name)
        return after(message, request.username)

    # A name taken or a rater unknown is a mistake: a warning, and the table and the form stay as they were.
    outputs = [c["message"], c["raters"], c["password"]]
    events = [
        ("new_token", on_new_token, [c["name"], c["scopes"], c["expires"]], "new_api_token"),
        ("revoke_tokens", on_revoke_tokens, [c["name"]], "revoke_api_tokens"),
        ("list", on_list, [], "raters"),
        ("add", on_add, [c["name"], c["role"], c["password"]], "add_rater"),
        ("set_role", on_set_role, [c["name"], c["role"]], "set_role"),
        ("deactivate", on_active(False), [c["name"]], "deactivate_rater"),
        ("reactivate", on_active(True), [c["name"]], "reactivate_rater"),
        ("reset", on_reset, [c["name"], c["password"]], "reset_password"),
    ]
    for button, handler, inputs, api_name in events:
        c[button].click(keeps_form(handler, outputs), inputs=inputs, outputs=outputs, api_name=api_name)


def _bind_export(sessions, campaign: str, c: dict, *, output_root: Path, archive_dir: str) -> None:
    def on_export(format: str, per_rater: bool, leaks: bool, request: gr.Request):
        result = admin.export_campaign(
            sessions=sessions,
            campaign=campaign,
            admin_name=request.username,
            format=format,
            output_root=output_root,
            archive_dir=archive_dir,
            per_rater=per_rater,
            include_identity_leaks=leaks,
        )
        return summary_markdown(result.directory, result.summary), str(result.archive)

    def on_push(format: str, per_rater: bool, leaks: bool, repo: str, request: gr.Request):
        try:
            message = admin.push_campaign(
                sessions,
                campaign=campaign,
                admin_name=request.username,
                format=format,
                repo=repo,
                output_root=output_root,
                per_rater=per_rater,
                include_identity_leaks=leaks,
            )
        except PushError as error:
            # Shown in the page and kept there: a failed push (offline, no token) is not a bug to report.
            return f"**Push failed.** {html.escape(str(error), quote=False)}"
        return html.escape(message, quote=False)

    settings = [c["format"], c["per_rater"], c["leaks"]]
    exported = [c["export_status"], c["download"]]
    c["export"].click(keeps_form(on_export, exported), inputs=settings, outputs=exported, api_name="export")
    pushed = [c["export_status"]]
    c["push"].click(keeps_form(on_push, pushed), inputs=[*settings, c["repo"]], outputs=pushed, api_name="push_to_hub")


# Staff also see the Campaign tab's raw agreement, lower for the same judgments: say why, once.
MEAN_AGREEMENT = (
    "`mean_agreement`: per judged task, the share of raters who gave the most common answer, averaged over tasks "
    "(a task judged once counts 1, a 1-1 split 0.5); the Campaign tab's raw agreement averages over pairs of "
    "raters, where a split counts 0, so it is lower."
)


def summary_markdown(directory: Path, summary: dict) -> str:
    """Where an export was saved, its summary.json, and what `mean_agreement` in it means, for the page."""
    return (
        f"Saved **{summary['rows']}** {summary['format']} rows to `{html.escape(str(directory))}` "
        f"(download the zip below).\n\n```json\n{json.dumps(summary, indent=2)}\n```\n\n{MEAN_AGREEMENT}"
    )
