"""Arena mode (being built): a rater's own prompt, two anonymous policies side by side, a vote."""

import gradio as gr


def create_arena_tab(sessions, campaign: str, spec) -> None:
    """Lay out the arena tab and bind its events."""
    gr.Markdown("Arena mode is being built.")
