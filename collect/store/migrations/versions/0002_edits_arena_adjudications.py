"""Raters' edits of the better response, arena battles as tasks, and reviewers' adjudications.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add judgments.edit, tasks.source and the adjudications table."""
    with op.batch_alter_table("judgments") as batch:
        batch.add_column(sa.Column("edit", sa.Text(), nullable=True))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("source", sa.String(length=20), nullable=False, server_default="pool"))
    op.create_table(
        "adjudications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("preference", sa.Integer(), nullable=True),
        sa.Column("both_bad", sa.Boolean(), nullable=False),
        sa.Column("ranks", sa.JSON(), nullable=True),
        sa.Column("ratings", sa.JSON(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["reviewer_id"], ["raters.id"]),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_adjudications_task_id"), "adjudications", ["task_id"], unique=False)


def downgrade() -> None:
    """Drop what `upgrade` added."""
    op.drop_index(op.f("ix_adjudications_task_id"), table_name="adjudications")
    op.drop_table("adjudications")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("judgments") as batch:
        batch.drop_column("edit")
