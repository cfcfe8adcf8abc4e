"""Rows written at commit (gateway.data.deferred): each table's rows in one statement per set of columns, when the
transaction commits or at write(); none of a transaction rolled back; the session's own changes flushed before
them, so that a row may refer to an object added in the same transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlmodel import Session

from gateway.data import deferred, tables
from gateway.data.db import session_scope
from gateway.data.models import Flow


def _flow(flow_id: str) -> Flow:
    return Flow(id=flow_id, account="acme", original_name=f"{flow_id}.xml", size=1, sha256="0" * 64)


def _event(flow_id: str, kind: str) -> dict:
    return {"flow_id": flow_id, "invoice_id": None, "kind": kind, "detail": "{}"}


def _status(flow_id: str, name: str, **more) -> dict:
    return {"kind": "status", "invoice_id": None, "flow_id": flow_id, "destination": "acme", "file_name": name,
            "sha256": "0" * 64, **more}


@pytest.fixture
def inserts(app):
    """The INSERT statements the engine runs, as (table, number of rows)."""
    seen: list[tuple[str, int]] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT"):
            rows = len(parameters) if executemany else 1
            seen.append((statement.split()[2], rows))

    event.listen(app.engine, "before_cursor_execute", count)
    yield seen
    event.remove(app.engine, "before_cursor_execute", count)


def _rows(app, table) -> list:
    with session_scope(app.engine, write=False) as session:
        return list(session.execute(select(table.c.flow_id, table.c.kind).order_by(table.c.id)))


def test_a_transactions_rows_are_written_at_its_commit_one_statement_per_table_and_columns(app, inserts):
    with session_scope(app.engine) as session:
        session.add(_flow("F1"))  # the rows below come after it, in the same transaction
        deferred.add(session, tables.event, _event("F1", "first"))
        deferred.add(session, tables.delivery, _status("F1", "a.xml"))
        deferred.add(session, tables.event, _event("F1", "second"))
        deferred.add(session, tables.delivery, _status("F1", "b.xml", subscription_id=7))
        deferred.add(session, tables.delivery, _status("F1", "c.xml"))
        assert _rows(app, tables.event) == []  # nothing before the commit
    assert [(row.flow_id, row.kind) for row in _rows(app, tables.event)] == [("F1", "first"), ("F1", "second")]
    with session_scope(app.engine, write=False) as session:
        names = list(session.scalars(select(tables.delivery.c.file_name).order_by(tables.delivery.c.file_name)))
    assert names == ["a.xml", "b.xml", "c.xml"]
    assert sorted(inserts) == sorted([("flow", 1), ("event", 2), ("delivery", 2), ("delivery", 1)])


def test_write_inserts_them_at_once_for_a_reader_in_the_same_transaction(app):
    with session_scope(app.engine) as session:
        session.add(_flow("F2"))
        deferred.add(session, tables.delivery, _status("F2", "now.xml"))
        deferred.write(session)
        found = session.scalars(select(tables.delivery.c.file_name).where(tables.delivery.c.flow_id == "F2")).all()
        assert found == ["now.xml"]
    with session_scope(app.engine, write=False) as session:  # written once, not again at the commit
        assert session.scalars(select(tables.delivery.c.file_name)).all() == ["now.xml"]


def test_a_transaction_rolled_back_writes_none_of_its_rows_nor_hands_them_to_the_next(app):
    with Session(app.engine) as session:
        deferred.add(session, tables.event, _event("F3", "lost"))
        session.rollback()
        deferred.add(session, tables.event, _event("F3", "kept"))
        session.commit()
    assert [row.kind for row in _rows(app, tables.event)] == ["kept"]
