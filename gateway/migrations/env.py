"""Alembic's environment: migrations run on the connection gateway.schema hands over, inside the
transaction that holds its lock, and autogenerate compares with gateway.models' tables."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from gateway import models  # noqa: F401  (registers the tables)


def _render_item(kind: str, obj: Any, _autogen_context: Any) -> str | bool:
    """Draft sqlmodel's column types as the SQLAlchemy types they stand for: a revision never imports sqlmodel."""
    if kind == "type" and isinstance(obj, AutoString):
        return "sa.String()"
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=SQLModel.metadata,
    render_as_batch=True,  # SQLite alters a table by copying it: batch operations do that
    render_item=_render_item,
)
with context.begin_transaction():
    context.run_migrations()
