"""Alembic's environment: migrations run on the connection gateway.data.schema hands over, inside the
transaction that holds its lock, and autogenerate compares with gateway.data.tables."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from gateway.data.tables import UTCDateTime, metadata


def _render_item(kind: str, obj: Any, _autogen_context: AutogenContext) -> str | Literal[False]:
    """Draft the tables' own column type as the SQLAlchemy type it stands for: a revision never imports gateway."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters a table by copying it: batch operations do that
    render_item=_render_item,
)
with context.begin_transaction():
    context.run_migrations()
