"""Accounts an operator disables (no login over SFTP, the console or the API until enabled again); the roles
of each registered process, which the queue shows.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # added in place, existing accounts enabled; the server default stays (models.Account says why)
    op.add_column("account", sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()))
    # the existing rows get no roles; new ones get the model's default, as create_all makes it
    with op.batch_alter_table("worker") as batch_op:
        batch_op.add_column(sa.Column("roles", sa.String(), nullable=False, server_default=""))
    with op.batch_alter_table("worker") as batch_op:
        batch_op.alter_column("roles", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("worker") as batch_op:
        batch_op.drop_column("roles")
    with op.batch_alter_table("account") as batch_op:
        batch_op.drop_column("disabled")
