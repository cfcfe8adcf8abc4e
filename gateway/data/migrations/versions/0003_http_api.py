"""The HTTP API: operators, API tokens, notification subscriptions, deposits' idempotency keys; deliveries
that carry a notification (of a flow, so without an invoice) to a subscription.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operator",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "apitoken",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("account", sa.String(), nullable=True),
        sa.Column("operator", sa.String(), nullable=True),
        sa.Column("hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account"], ["account.name"]),
        sa.ForeignKeyConstraint(["operator"], ["operator.name"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_apitoken_account", "apitoken", ["account"])
    op.create_index("ix_apitoken_operator", "apitoken", ["operator"])
    op.create_table(
        "subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("secret", sa.String(), nullable=True),
        sa.Column("events", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account"], ["account.name"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_subscription_account", "subscription", ["account"])
    op.create_table(
        "idempotencykey",
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "key"),
    )
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.add_column(sa.Column("subscription_id", sa.Integer(), nullable=True))
        batch_op.alter_column("invoice_id", existing_type=sa.String(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch_op:
        batch_op.alter_column("invoice_id", existing_type=sa.String(), nullable=False)
        batch_op.drop_column("subscription_id")
    op.drop_table("idempotencykey")
    op.drop_index("ix_subscription_account", table_name="subscription")
    op.drop_table("subscription")
    op.drop_index("ix_apitoken_operator", table_name="apitoken")
    op.drop_index("ix_apitoken_account", table_name="apitoken")
    op.drop_table("apitoken")
    op.drop_table("operator")
