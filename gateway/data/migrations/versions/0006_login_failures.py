"""Failed logins, per address and account name, kept across restarts and shared by every process
(gateway.access.throttle).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loginfailure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(), nullable=False),
        sa.Column("account", sa.String(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_loginfailure_ip"), "loginfailure", ["ip"], unique=False)
    op.create_index(op.f("ix_loginfailure_at"), "loginfailure", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_loginfailure_at"), table_name="loginfailure")
    op.drop_index(op.f("ix_loginfailure_ip"), table_name="loginfailure")
    op.drop_table("loginfailure")
