"""Raters have a kind: a person (`human`) or a simulated rater (`simulated`).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add raters.kind; every rater already stored is a person."""
    with op.batch_alter_table("raters") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=20), nullable=False, server_default="human"))


def downgrade() -> None:
    """Drop what `upgrade` added."""
    with op.batch_alter_table("raters") as batch:
        batch.drop_column("kind")
