"""Refusals and bad input shown in the page as Gradio's error message, never as a traceback."""

import gradio as gr

from collect.store import StoreError

# A role that may not do this, a store that refuses (no such rater, a deactivated account), a value that is wrong.
REFUSALS = (PermissionError, StoreError, ValueError)


def shown_as_error(function, *args, **kwargs):
    """`function(*args, **kwargs)`; a refusal or bad input is raised as `gr.Error`, so the page shows its message."""
    try:
        return function(*args, **kwargs)
    except REFUSALS as error:
        raise gr.Error(str(error)) from None
