"""A change counter of the reference data (directory, accounts, subscriptions, endpoints), which each process
keeps in memory (gateway.data.reference): every write to their tables bumps it in the writing transaction, by
triggers, whatever writes (a command, the API, the console, an operator's SQL).

An endpoint's lease and listing, written at each poll, are not reference data: only its settings count.
PostgreSQL bumps once a statement, SQLite (which has no statement triggers) once a row.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COUNTER = "reference"
TABLES = ("structure", "service", "account", "accountsiret", "subscription", "endpoint")
# the endpoint's settings, as `gateway accounts remote` writes them
ENDPOINT_SETTINGS = ("host", "port", "user", "key_path", "host_key", "directory", "interval", "after")
_BUMP = f"UPDATE changes SET counter = counter + 1 WHERE name = '{COUNTER}'"


def _events(table: str) -> list[str]:
    """The writes that bump the counter, one a trigger on SQLite."""
    quoted = ", ".join(f'"{column}"' for column in ENDPOINT_SETTINGS)  # "user" is a keyword of PostgreSQL's
    updates = f"UPDATE OF {quoted}" if table == "endpoint" else "UPDATE"
    return ["INSERT", updates, "DELETE"]


def upgrade() -> None:
    op.create_table("changes", sa.Column("name", sa.String(), nullable=False),
                    sa.Column("counter", sa.Integer(), nullable=False), sa.PrimaryKeyConstraint("name"))
    op.execute(f"INSERT INTO changes (name, counter) VALUES ('{COUNTER}', 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE FUNCTION gateway_reference_changed() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN {_BUMP}; RETURN NULL; END $$")
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_changed AFTER {' OR '.join([*_events(table), 'TRUNCATE'])} "
                       f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION gateway_reference_changed()")
        return
    for table in TABLES:
        for number, event in enumerate(_events(table)):
            op.execute(f"CREATE TRIGGER {table}_changed_{number} AFTER {event} ON {table} BEGIN {_BUMP}; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_changed ON {table}")
        op.execute("DROP FUNCTION gateway_reference_changed()")
    else:
        for table in TABLES:
            for number in range(len(_events(table))):
                op.execute(f"DROP TRIGGER {table}_changed_{number}")
    op.drop_table("changes")
