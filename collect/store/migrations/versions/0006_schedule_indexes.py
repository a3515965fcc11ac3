"""Indexes that let the scheduler find a rater's next task without reading every task of the campaign.

`ix_tasks_schedule` gains `id`, so tasks come in (judgment_count, id) order straight from it
(PostgreSQL does not append the key the way SQLite appends the rowid); `ix_tasks_priority`
does the same for the `priority` strategy; `ix_assignments_open_leases` holds only leases,
so the tasks other raters are holding are found without reading every answered assignment.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LEASED = sa.text("state = 'leased'")


def upgrade() -> None:
    """Rebuild the schedule index with the id, add the priority and open-lease indexes."""
    op.drop_index("ix_tasks_schedule", table_name="tasks")
    op.create_index("ix_tasks_schedule", "tasks", ["campaign_id", "is_gold", "judgment_count", "id"])
    op.create_index(
        "ix_tasks_priority", "tasks", ["campaign_id", "is_gold", sa.desc(sa.column("priority")), "judgment_count", "id"]
    )
    op.create_index(
        "ix_assignments_open_leases",
        "assignments",
        ["expires_at"],
        sqlite_where=LEASED,
        postgresql_where=LEASED,
    )


def downgrade() -> None:
    """Back to the 0005 indexes."""
    op.drop_index("ix_assignments_open_leases", table_name="assignments")
    op.drop_index("ix_tasks_priority", table_name="tasks")
    op.drop_index("ix_tasks_schedule", table_name="tasks")
    op.create_index("ix_tasks_schedule", "tasks", ["campaign_id", "is_gold", "judgment_count"])
