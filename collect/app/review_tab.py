"""The reviewer's tab (being built): the disagreement queue and adjudication."""

import gradio as gr


def create_review_tab(sessions, campaign: str, spec) -> None:
    """Lay out the review tab and bind its events."""
    gr.Markdown("The review queue is being built.")
