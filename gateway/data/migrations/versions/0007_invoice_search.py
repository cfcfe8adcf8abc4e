"""Invoice searches that stay fast at 100,000 invoices: each invoice keeps its supplier account (its flow's) and
its total as a number, so that the console's and the API's searches, counts and sorts read the invoice table
alone, through the indexes made here.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_AMOUNT = re.compile(r"-?[0-9]{1,15}([.][0-9]+)?")  # as gateway.validate.extract.InvoiceData.amount reads a total
_BATCH = 5000


def upgrade() -> None:
    # added in place (SQLite would rebuild the table to drop a default, which the foreign keys to it forbid)
    op.add_column("invoice", sa.Column("account", sa.String(), nullable=False, server_default=""))
    op.add_column("invoice", sa.Column("amount", sa.Float(), nullable=True))
    op.execute("UPDATE invoice SET account = "
               "COALESCE((SELECT flow.account FROM flow WHERE flow.id = invoice.flow_id), '')")
    _amounts(op.get_bind())
    op.create_index("ix_invoice_amount", "invoice", ["amount"])
    op.create_index("ix_invoice_account_issued", "invoice", ["account", "issue_date", "status"])
    op.create_index("ix_invoice_recipient_issued", "invoice", ["recipient", "verdict", "issue_date", "status"])
    op.create_index("ix_invoice_account_newest", "invoice", ["account", "id"])
    op.create_index("ix_invoice_recipient_newest", "invoice", ["recipient", "verdict", "id"])
    op.create_index("ix_invoice_issued", "invoice", ["issue_date", "status"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_invoice_amount_desc", "invoice", [sa.text("amount DESC NULLS LAST")])


def _amounts(connection: sa.Connection) -> None:
    """Each invoice's total as a number, where its text is one."""
    invoice = sa.table("invoice", sa.column("id", sa.String()), sa.column("total", sa.String()),
                       sa.column("amount", sa.Float()))
    rows = connection.execute(sa.select(invoice.c.id, invoice.c.total).where(invoice.c.total.is_not(None))).all()
    numbers = [{"key": id_, "value": float(total.strip())} for id_, total in rows if _AMOUNT.fullmatch(total.strip())]
    update = invoice.update().where(invoice.c.id == sa.bindparam("key")).values(amount=sa.bindparam("value"))
    for start in range(0, len(numbers), _BATCH):
        connection.execute(update, numbers[start:start + _BATCH])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_invoice_amount_desc", table_name="invoice")
    for index in ("ix_invoice_issued", "ix_invoice_recipient_newest", "ix_invoice_account_newest",
                  "ix_invoice_recipient_issued",
                  "ix_invoice_account_issued", "ix_invoice_amount"):
        op.drop_index(index, table_name="invoice")
    with op.batch_alter_table("invoice") as batch_op:
        batch_op.drop_column("amount")
        batch_op.drop_column("account")
