"""The REST API (FastAPI): `server` builds the app, `routes` answers raters and staff, `schemas` checks request bodies.

It reads what it shows from `collect.services.read_models` and acts through the services
(scheduling, export); the Gradio app is mounted on it by `plumb collect serve`, and
never imported here.
"""
