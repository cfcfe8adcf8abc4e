"""Accounts served in turn by the work queue: each flow keeps its turn (gateway.engine.queue), and the indexes of the
claim's order and of an account's last turn.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # added in place (SQLite would rebuild the table to drop a default, which the foreign keys to it forbid);
    # the flows queued before it all take the first turn, in the order they arrived
    op.add_column("flow", sa.Column("turn", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_flow_turn", "flow", ["state", "turn", "id"])
    op.create_index("ix_flow_account_turn", "flow", ["account", "state", "turn"])


def downgrade() -> None:
    op.drop_index("ix_flow_account_turn", table_name="flow")
    op.drop_index("ix_flow_turn", table_name="flow")
    with op.batch_alter_table("flow") as batch_op:
        batch_op.drop_column("turn")
