"""The browser console: operators' passwords, and the console's sessions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operatorpassword",
        sa.Column("operator", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["operator"], ["operator.name"]),
        sa.PrimaryKeyConstraint("operator"),
    )
    op.create_table(
        "websession",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("account", sa.String(), nullable=True),
        sa.Column("operator", sa.String(), nullable=True),
        sa.Column("csrf", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account"], ["account.name"]),
        sa.ForeignKeyConstraint(["operator"], ["operator.name"]),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("websession")
    op.drop_table("operatorpassword")
