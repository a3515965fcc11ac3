"""The campaign tab, for reviewers and admins: progress of the campaign and judgments per rater."""

import gradio as gr


def create_campaign_tab() -> dict[str, gr.components.Component]:
    """Lay out the campaign overview; returns its components by name."""
    components = {"overview": gr.Markdown(elem_id="plumb-overview")}
    components["refresh"] = gr.Button("Refresh", size="sm")
    return components
