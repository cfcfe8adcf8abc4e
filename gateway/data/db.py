"""Database engine and sessions.

SQLite is the default: WAL mode so readers never wait for the writer, a busy timeout so writers
queue instead of failing, and every transaction that may write started with BEGIN IMMEDIATE so
that one which reads then writes cannot fail half-way on a lock upgrade. A session that only
reads (session_scope(write=False)) begins DEFERRED instead: it neither waits for the writer nor
holds the others up, which matters when several processes share the file. PostgreSQL needs none
of this and gets a plain engine, whose pooled connections are checked before use.

Writers queue for SQLite's write lock on a lock file beside the database (flock, from BEGIN IMMEDIATE
until the connection goes back to the pool after its COMMIT or ROLLBACK): a waiting writer starts as soon
as the previous one ends, where SQLite's busy handler would poll with sleeps growing to 100 ms, letting a
writer that commits often (a worker) starve the others (an API deposit, an SFTP intake). Past the
connection's busy timeout the writer stops queueing and leaves the decision to SQLite.

make_engine() also sees to the schema (gateway.data.schema): an empty database is created at head, one at
any other revision is refused until `gateway db upgrade`.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

from gateway.data.schema import ensure_schema
from gateway.ops.permissions import PRIVATE_DIR, make_dir, make_private_file

if TYPE_CHECKING:
    from sqlmodel import Session


_READS_ONLY = "gateway_reads_only"


def _sqlite_engine(url: str) -> Engine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        make_dir(Path(path).parent, PRIVATE_DIR)
        make_private_file(Path(path))  # before SQLite makes it with the umask's mode, and its -wal and -shm alike
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
        if conn.get_execution_options().get(_READS_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        if path and path != ":memory:":
            _queue_for_writing(conn.info, conn.connection.dbapi_connection, f"{path}.writer")
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, record) -> None:
        if record.info.pop(_QUEUED, False):
            fcntl.flock(record.info[_QUEUE_FD], fcntl.LOCK_UN)

    @event.listens_for(engine, "close")
    def _on_close(_dbapi_conn, record) -> None:
        fd = record.info.pop(_QUEUE_FD, None)
        if fd is not None:
            os.close(fd)  # closing it also ends a flock still held

    return engine


_QUEUE_FD, _QUEUED = "gateway_writer_fd", "gateway_writer_queued"
_QUEUE_POLL_MIN, _QUEUE_POLL_MAX = 0.0005, 0.005  # seconds between two looks at the writers' lock file


def _queue_for_writing(info: dict, dbapi_conn, lock_path: str) -> None:
    """Take the writers' lock file for this connection, waiting at most its busy timeout."""
    fd = info.get(_QUEUE_FD)
    if fd is None:
        fd = info[_QUEUE_FD] = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + dbapi_conn.execute("PRAGMA busy_timeout").fetchone()[0] / 1000
    delay = _QUEUE_POLL_MIN
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return
            time.sleep(delay)
            delay = min(2 * delay, _QUEUE_POLL_MAX)
            continue
        info[_QUEUED] = True
        return


def open_engine(url: str) -> Engine:
    """An engine on the database as it is, whatever its schema (for `gateway db`)."""
    # PostgreSQL: a pooled connection is checked before use, so that one the server closed (a restart) is
    # replaced quietly instead of failing the work that took it
    return _sqlite_engine(url) if url.startswith("sqlite") else create_engine(url, pool_pre_ping=True)


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
    from sqlmodel import Session  # imported by the commands using the ORM only: reading() needs none of it

    bind = engine if write else engine.execution_options(**{_READS_ONLY: True})
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that only reads (begun as session_scope(write=False) begins), for reads in
    SQLAlchemy Core: no ORM session, so a command that only reads never imports the ORM."""
    with engine.execution_options(**{_READS_ONLY: True}).connect() as connection, connection.begin():
        yield connection
