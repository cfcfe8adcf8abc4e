"""Rows written when their transaction commits: rows that nothing reads before then (a flow's events, the
status-returns it queues), gathered over the transaction and inserted in one statement per table and set of
columns, instead of one statement each.

    deferred.add(session, tables.event, {"flow_id": ..., ...})
    deferred.write(session)  # now, for a reader in the same transaction that needs them

A transaction rolled back forgets them. The rows they refer to (a delivery's invoice) are written first: the
session's own changes are flushed before them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Insert, Table, event, insert
from sqlalchemy.orm import Session, SessionTransaction

_ROWS = "gateway_deferred"  # Session.info key: {(table, its columns): [rows]}, in the order first added


def add(session: Session, table: Table, row: dict[str, Any]) -> None:
    """Insert row into table when the caller's transaction commits (or at write())."""
    if not session.in_transaction():  # begun, so that its rollback forgets row
        session.begin()
    session.info.setdefault(_ROWS, {}).setdefault((table, tuple(row)), []).append(row)


@event.listens_for(Session, "before_commit")
def write(session: Session) -> None:
    """Insert the rows added so far in the session's transaction."""
    pending = session.info.pop(_ROWS, None)
    for (table, _columns), rows in (pending or {}).items():
        session.execute(_insert(table), rows)


@cache
def _insert(table: Table) -> Insert:
    """The table's INSERT, built once (building it costs as much as the ORM object it replaces)."""
    return insert(table)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous: SessionTransaction) -> None:
    """A rollback forgets the transaction's rows (after_rollback would miss one whose transaction had not begun on
    the database); a savepoint's keeps them."""
    if previous.parent is None:
        session.info.pop(_ROWS, None)
