"""Alembic migrations of the preference store; run by `plumb collect init` (collect.store.engine.upgrade)."""
