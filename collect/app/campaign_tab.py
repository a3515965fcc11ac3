"""The campaign tab, for reviewers and admins: progress, plots over time and per rater, per-task progress,
agreement, rater reliability, leaderboard."""

import tempfile
from pathlib import Path

import gradio as gr

from collect.app import handlers
from collect.app.display import overview_markdown
from collect.app.errors import keeps_form
from collect.app.plots import plot_drift_over_time, plot_judgments_over_time, plot_judgments_per_rater
from collect.domain.quality.report_markdown import report_markdown
from collect.services import admin
from collect.services.drift import DRIFT_BLOCK

TASK_COLUMNS = ["task", "prompt", "gold", "judgments", "target", "status"]


def create_campaign_tab(sessions, campaign: str) -> None:
    """Lay out the campaign overview and bind its Refresh button (staff only, checked on the server);
    the interface clicks it when the tab is opened."""
    overview = gr.Markdown(elem_id="plumb-overview")
    refresh = gr.Button("Refresh", size="sm", elem_id="plumb-campaign-refresh")
    with gr.Row():
        over_time = gr.Image(label="judgments over time", type="filepath", interactive=False, elem_id="plumb-over-time")
        per_rater = gr.Image(label="judgments per rater", type="filepath", interactive=False, elem_id="plumb-per-rater")
    drift_plot = gr.Image(
        label=f"drift over time: people's pairwise judgments, in blocks of {DRIFT_BLOCK}",
        type="filepath",
        interactive=False,
        elem_id="plumb-drift",
    )
    with gr.Accordion("Progress per task", open=False):
        tasks = gr.Dataframe(headers=TASK_COLUMNS, interactive=False, elem_id="plumb-task-progress")
    gr.Markdown("### Agreement and raters")
    quality = gr.Markdown(elem_id="plumb-quality")
    ratings = gr.Image(
        label="leaderboard: Bradley-Terry ratings (Elo scale), 95% bootstrap interval",
        type="filepath",
        interactive=False,
        elem_id="plumb-ratings",
    )
    plot_dir = tempfile.mkdtemp(prefix="plumb-plots-")  # per app, under the temp dir Gradio serves files from

    def on_refresh(request: gr.Request) -> tuple[str, str, str | None]:
        stats, counts = handlers.campaign_overview(sessions, campaign=campaign, rater_name=request.username)
        report, plot, note = admin.campaign_quality(
            sessions, campaign=campaign, staff_name=request.username, plot_dir=plot_dir
        )
        text = "\n\n".join(part for part in (report_markdown(report) if report else "", note) if part)
        return overview_markdown(stats, counts), text, plot

    def on_activity(request: gr.Request):
        activity = admin.campaign_activity(sessions, campaign=campaign, staff_name=request.username)
        directory = Path(plot_dir)
        timeline = plot_judgments_over_time(activity["times"], directory / "over-time.png")
        bars = plot_judgments_per_rater(activity["per_rater"], directory / "per-rater.png")
        drift = plot_drift_over_time(
            activity["drift"], directory / "drift.png", title="Drift of people's judgments, block by block"
        )
        rows = [[row[column] for column in TASK_COLUMNS] for row in activity["tasks"]]
        return (
            str(timeline) if timeline else None,
            str(bars) if bars else None,
            str(drift) if drift else None,
            gr.Dataframe(value=rows, headers=TASK_COLUMNS),
        )

    figures, progress = [overview, quality, ratings], [over_time, per_rater, drift_plot, tasks]
    refresh.click(keeps_form(on_refresh, figures), outputs=figures, api_name="campaign_overview")
    refresh.click(keeps_form(on_activity, progress), outputs=progress, api_name="campaign_activity")
