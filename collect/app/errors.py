"""Refusals and bad input shown in the page, never as a traceback in the server log.

Gradio prints the traceback of any exception a handler raises, `gr.Error` included, unless
told not to; an expected refusal is not a bug, so it is raised with `print_exception=False`.
Anything else (a real failure) still propagates and is printed.
"""

import functools

import gradio as gr

from collect.store import StoreError

# A role that may not do this, a store that refuses (no such rater, a deactivated account), a value that is wrong.
REFUSALS = (PermissionError, StoreError, ValueError)
# A user's mistake in a form (a name taken, nothing chosen): said in a toast while the form stays as it was.
MISTAKES = (StoreError, ValueError)


def shown_as_error(function, *args, **kwargs):
    """`function(*args, **kwargs)`; a refusal or bad input is raised as `gr.Error`, so the page shows its message."""
    try:
        return function(*args, **kwargs)
    except REFUSALS as error:
        raise gr.Error(str(error), print_exception=False) from None


def keeps_form(handler, outputs: list):
    """`handler` for an event with `outputs`, which on a user's mistake shows a warning and changes no output.

    `gr.Error` would replace every output with an error badge (and leave radios dead until a
    reload); a refused role is still a `gr.Error`, so an API caller sees it fail.
    """

    @functools.wraps(handler)  # Gradio reads the signature through it to pass `gr.Request`
    def kept(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except PermissionError as error:
            raise gr.Error(str(error), print_exception=False) from None
        except MISTAKES as error:
            gr.Warning(str(error))
            unchanged = tuple(gr.skip() for _ in outputs)
            return unchanged[0] if len(outputs) == 1 else unchanged

    return kept
