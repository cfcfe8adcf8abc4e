"""The schema as gateway.models made it with create_all, before there were migrations.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# PostgreSQL enum types the tables made (SQLite keeps names in VARCHAR columns); dropping a table leaves its type.
ENUMS = ("role", "statusformat", "direction", "flowstate", "verdict", "deliverystate")


def upgrade() -> None:
    op.create_table("account",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.Enum("SUPPLIER", "RECIPIENT", name="role"), nullable=False),
        sa.Column("status_format", sa.Enum("CDAR", "PEPPOL", "GATEWAY", name="statusformat"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name")
    )

    op.create_table("collected",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("location", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("mtime", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=True),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_collected_account", "collected", ["account"])
    op.create_index("ix_collected_removed", "collected", ["removed"])

    op.create_table("event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("invoice_id", sa.String(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_event_flow_id", "event", ["flow_id"])

    op.create_table("flow",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("original_name", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.Enum("RECU", "INTEGRE", "INTEGRE_PARTIEL", "REJETE", "INCIDENTE", name="flowstate"),
                  nullable=False),
        sa.Column("syntax", sa.String(), nullable=True),
        sa.Column("findings", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("outcomes", sa.String(), nullable=False),
        sa.Column("acknowledged", sa.Boolean(), nullable=False),
        sa.Column("reported", sa.Boolean(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_flow_account", "flow", ["account"])
    op.create_index("ix_flow_sha256", "flow", ["sha256"])
    op.create_index("ix_flow_state", "flow", ["state"])

    op.create_table("structure",
        sa.Column("siret", sa.String(), nullable=False),
        sa.Column("id_type", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("edi_emitter", sa.Boolean(), nullable=False),
        sa.Column("edi_receiver", sa.Boolean(), nullable=False),
        sa.Column("reports_payment", sa.Boolean(), nullable=False),
        sa.Column("ej_required", sa.Boolean(), nullable=False),
        sa.Column("service_required", sa.Boolean(), nullable=False),
        sa.Column("service_or_ej_required", sa.Boolean(), nullable=False),
        sa.Column("is_moa", sa.Boolean(), nullable=False),
        sa.Column("is_moa_only", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("address2", sa.String(), nullable=False),
        sa.Column("address3", sa.String(), nullable=False),
        sa.Column("postal_code", sa.String(), nullable=False),
        sa.Column("city", sa.String(), nullable=False),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("country_code", sa.String(), nullable=False),
        sa.Column("country", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("siret")
    )

    op.create_table("worker",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )

    op.create_table("accountkey",
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("comment", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["account"], ["account.name"]),
        sa.PrimaryKeyConstraint("account", "key")
    )

    op.create_table("accountpassword",
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["account"], ["account.name"]),
        sa.PrimaryKeyConstraint("account")
    )

    op.create_table("accountsiret",
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("siret", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["account"], ["account.name"]),
        sa.PrimaryKeyConstraint("account", "siret")
    )
    op.create_index("ix_accountsiret_siret", "accountsiret", ["siret"])

    op.create_table("endpoint",
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("direction", sa.Enum("PUSH", "PULL", name="direction"), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("key_path", sa.String(), nullable=False),
        sa.Column("host_key", sa.String(), nullable=False),
        sa.Column("directory", sa.String(), nullable=False),
        sa.Column("interval", sa.Float(), nullable=True),
        sa.Column("after", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["account"], ["account.name"]),
        sa.PrimaryKeyConstraint("account", "direction")
    )

    op.create_table("invoice",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("syntax", sa.String(), nullable=True),
        sa.Column("number", sa.String(), nullable=True),
        sa.Column("issue_date", sa.String(), nullable=True),
        sa.Column("type_code", sa.String(), nullable=True),
        sa.Column("seller_siret", sa.String(), nullable=True),
        sa.Column("buyer_siret", sa.String(), nullable=True),
        sa.Column("service_code", sa.String(), nullable=True),
        sa.Column("engagement", sa.String(), nullable=True),
        sa.Column("total", sa.String(), nullable=True),
        sa.Column("currency", sa.String(), nullable=True),
        sa.Column("verdict", sa.Enum("ACCEPTED", "REJECTED", name="verdict"), nullable=False),
        sa.Column("recipient", sa.String(), nullable=True),
        sa.Column("findings", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("completes", sa.String(), nullable=True),
        sa.Column("packs", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["flow_id"], ["flow.id"]),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_invoice_flow_id", "invoice", ["flow_id"])
    op.create_index("ix_invoice_number", "invoice", ["number"])
    op.create_index("ix_invoice_status", "invoice", ["status"])

    op.create_table("service",
        sa.Column("siret", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("ej_required", sa.Boolean(), nullable=False),
        sa.Column("start_date", sa.String(), nullable=True),
        sa.Column("end_date", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["siret"], ["structure.siret"]),
        sa.PrimaryKeyConstraint("siret", "code")
    )

    op.create_table("delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("invoice_id", sa.String(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("destination", sa.String(), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("state", sa.Enum("PENDING", "DELIVERED", "DEAD", name="deliverystate"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("where", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoice.id"]),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_delivery_flow_id", "delivery", ["flow_id"])
    op.create_index("ix_delivery_invoice_id", "delivery", ["invoice_id"])
    op.create_index("ix_delivery_state", "delivery", ["state"])

    op.create_table("invoicestatus",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason_code", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("mandate_number", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoice.id"]),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_invoicestatus_invoice_id", "invoicestatus", ["invoice_id"])


def downgrade() -> None:
    op.drop_table("invoicestatus")
    op.drop_table("delivery")
    op.drop_table("service")
    op.drop_table("invoice")
    op.drop_table("endpoint")
    op.drop_table("accountsiret")
    op.drop_table("accountpassword")
    op.drop_table("accountkey")
    op.drop_table("worker")
    op.drop_table("structure")
    op.drop_table("flow")
    op.drop_table("event")
    op.drop_table("collected")
    op.drop_table("account")
    for name in ENUMS:
        sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
