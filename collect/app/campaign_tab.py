"""The campaign tab, for reviewers and admins: progress, judgments per rater, agreement, rater reliability, leaderboard."""

import tempfile

import gradio as gr

from collect.app import handlers
from collect.app.display import overview_markdown


def create_campaign_tab(sessions, campaign: str) -> None:
    """Lay out the campaign overview and bind its Refresh button (staff only, checked on the server)."""
    overview = gr.Markdown(elem_id="plumb-overview")
    refresh = gr.Button("Refresh", size="sm")
    gr.Markdown("### Agreement and raters")
    quality = gr.Code(label="agreement, per-rater reliability, aggregation", language=None,
                      elem_id="plumb-quality", interactive=False)
    ratings = gr.Image(label="leaderboard: Bradley-Terry ratings (Elo scale), 95% bootstrap interval",
                       type="filepath", interactive=False, elem_id="plumb-ratings")
    plot_dir = tempfile.mkdtemp(prefix="plumb-plots-")  # per app, under the temp dir Gradio serves files from

    def on_refresh(request: gr.Request) -> tuple[str, str, str | None]:
        try:
            stats, per_rater = handlers.campaign_overview(sessions, campaign=campaign, rater_name=request.username)
            report, plot = handlers.campaign_quality(sessions, campaign=campaign, rater_name=request.username,
                                                     plot_dir=plot_dir)
        except PermissionError as error:
            raise gr.Error(str(error)) from None
        return overview_markdown(stats, per_rater), report, plot

    refresh.click(on_refresh, outputs=[overview, quality, ratings], api_name="campaign_overview")
