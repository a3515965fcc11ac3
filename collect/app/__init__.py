"""The Gradio rater app: layout functions (`create_*_tab`), plain-function handlers, and `interface.create_ui`.

Imported only by `plumb collect serve` and the tests: `collect.store` and the REST API
never import Gradio.
"""
