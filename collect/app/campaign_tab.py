"""The campaign tab, for reviewers and admins: progress, judgments per rater, agreement, rater reliability, leaderboard."""

import gradio as gr


def create_campaign_tab() -> dict[str, gr.components.Component]:
    """Lay out the campaign overview; returns its components by name."""
    components = {"overview": gr.Markdown(elem_id="plumb-overview")}
    components["refresh"] = gr.Button("Refresh", size="sm")
    gr.Markdown("### Agreement and raters")
    components["quality"] = gr.Code(label="agreement, per-rater reliability, aggregation", language=None,
                                    elem_id="plumb-quality", interactive=False)
    components["ratings"] = gr.Image(label="leaderboard: Bradley-Terry ratings (Elo scale), 95% bootstrap interval",
                                     type="filepath", interactive=False, elem_id="plumb-ratings")
    return components
