"""The admin tab (being built): raters, export and push, plots over time."""

import gradio as gr


def create_admin_tab(sessions, campaign: str) -> None:
    """Lay out the admin tab and bind its events."""
    gr.Markdown("The admin tab is being built.")
