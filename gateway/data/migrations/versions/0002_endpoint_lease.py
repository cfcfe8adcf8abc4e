"""Pull endpoints are polled under a lease, by one process at a time, which keeps what the last poll saw.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("endpoint") as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        # the existing rows get an empty listing; new ones get the model's default, as create_all makes it
        batch_op.add_column(sa.Column("listing", sa.String(), nullable=False, server_default="{}"))
    with op.batch_alter_table("endpoint") as batch_op:
        batch_op.alter_column("listing", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("endpoint") as batch_op:
        batch_op.drop_column("listing")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
