"""API tokens of their own: several per rater, with scopes, an expiry, and revocation.

Each rater's one token moves from `raters.token_hash` into `api_tokens` with the scopes
their role allows, so every token handed out before keeps working; a deactivated rater's
token moves over revoked, so reactivating them does not revive it.

Revision ID: 0005
Revises: 0004
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCOPES_OF_ROLE = {"rater": ["rate"], "reviewer": ["rate", "review"], "admin": ["rate", "review", "admin"]}


def upgrade() -> None:
    """Create api_tokens, move the raters' tokens over, empty raters.token_hash."""
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rater_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["rater_id"], ["raters.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_tokens_rater_id", "api_tokens", ["rater_id"])
    # In SQL, not through Python rows: SQLite hands its DateTime back as text that a bulk insert would refuse.
    json_cast = "::json" if op.get_bind().dialect.name == "postgresql" else ""
    cases = " ".join(f"WHEN '{role}' THEN '{json.dumps(listed)}'{json_cast}" for role, listed in SCOPES_OF_ROLE.items())
    op.execute(
        "INSERT INTO api_tokens (rater_id, token_hash, scopes, created_at, expires_at, revoked_at) "
        f"SELECT id, token_hash, CASE role {cases} ELSE '[\"rate\"]'{json_cast} END, created_at, NULL, "
        # A deactivated rater's token moves over revoked: reactivating them later must not revive it.
        "CASE WHEN active THEN NULL ELSE created_at END FROM raters WHERE token_hash IS NOT NULL"
    )
    # The old column stays, emptied: SQLite cannot drop a UNIQUE column in place, and rebuilding the table
    # would need foreign keys off, which SQLite ignores inside the migration's transaction.
    op.execute("UPDATE raters SET token_hash = NULL")


def downgrade() -> None:
    """Give each rater back their newest live token's hash, then drop api_tokens."""
    op.execute(
        "UPDATE raters SET token_hash = (SELECT token_hash FROM api_tokens WHERE api_tokens.rater_id = raters.id "
        "AND api_tokens.revoked_at IS NULL ORDER BY api_tokens.id DESC LIMIT 1)"
    )
    op.drop_table("api_tokens")
