"""Database engine and sessions.

SQLite is the default: WAL mode so readers never wait for the writer, a busy timeout so writers
queue instead of failing, and every transaction that may write started with BEGIN IMMEDIATE so
that one which reads then writes cannot fail half-way on a lock upgrade. A session that only
reads (session_scope(write=False)) begins DEFERRED instead: it neither waits for the writer nor
holds the others up, which matters when several processes share the file. PostgreSQL needs none
of this and gets a plain engine.

make_engine() also sees to the schema (gateway.schema): an empty database is created at head, one at
any other revision is refused until `gateway db upgrade`.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from gateway.schema import ensure_schema


_READS_ONLY = "gateway_reads_only"


def _sqlite_engine(url: str) -> Engine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READS_ONLY) else "BEGIN IMMEDIATE")

    return engine


def open_engine(url: str) -> Engine:
    """An engine on the database as it is, whatever its schema (for `gateway db`)."""
    return _sqlite_engine(url) if url.startswith("sqlite") else create_engine(url)


def make_engine(url: str) -> Engine:
    """An engine on a database at this gateway's schema, creating it if empty (SchemaError otherwise)."""
    engine = open_engine(url)
    try:
        ensure_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


@contextmanager
def session_scope(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error; write=False promises that
    it only reads (on SQLite it then begins without taking the write lock)."""
    bind = engine if write else engine.execution_options(**{_READS_ONLY: True})
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
