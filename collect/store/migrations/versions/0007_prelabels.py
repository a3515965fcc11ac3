"""Pre-labels: a reward model's answer on each task, and whether a rater saw it before answering.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add tasks.prelabel and judgments.prelabel_seen (both empty for what is already stored)."""
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("prelabel", sa.JSON(), nullable=True))
    with op.batch_alter_table("judgments") as batch:
        batch.add_column(sa.Column("prelabel_seen", sa.Boolean(), nullable=True))


def downgrade() -> None:
    """Drop what `upgrade` added."""
    with op.batch_alter_table("judgments") as batch:
        batch.drop_column("prelabel_seen")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("prelabel")
