"""The database out of reach: telling it apart from other failures, and saying so once.

PostgreSQL restarted or stopped (every connection cut, new ones refused for a while), or SQLite's write
lock held past the busy timeout by another program: no fault of the flow or the file at hand, and it
passes by itself. Like a full disk (gateway.ops.diskfull), work in hand is kept and tried again without counting
an attempt, a file taken is left in the spool for recovery (its flow id kept, so it is admitted once), and
each process says once that the database is unreachable and once that it is back. The engine itself tells
the alarm: a failed statement or connection raises it, the next statement that succeeds clears it.
"""

from __future__ import annotations

import sys

from sqlalchemy import event
from sqlalchemy.engine import Engine

from gateway.ops.alarm import Alarm
from gateway.ops.log import log

RETRY_SECONDS = 0.5  # work held up by the database is tried again after this, then after twice as long...
RETRY_MAX_SECONDS = 5.0  # ...up to this: soon after the database is back, whatever the outage lasted
SETTLE_SECONDS = 2.0  # the database answering this long after its last failure: the outage is over
_SQLITE_BUSY = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED: another connection holds the lock
# SQLSTATE classes and codes of a connection lost or refused: connection_exception (08...), admin_shutdown,
# crash_shutdown, cannot_connect_now (a server starting or stopping)
_POSTGRES_CLASSES, _POSTGRES_CODES = ("08",), frozenset({"57P01", "57P02", "57P03"})


def is_database_down(exc: BaseException | None) -> bool:
    """Whether exc, or an error it was raised from, says the database cannot be reached for now."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "connection_invalidated", False):
            return True
        if (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF in _SQLITE_BUSY:
            return True
        if _is_postgres_connection_error(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _is_postgres_connection_error(exc: BaseException) -> bool:
    if type(exc).__module__.split(".")[0] != "psycopg":
        return False
    import psycopg  # only PostgreSQL's driver raises these, and only where it is installed

    state = getattr(exc, "sqlstate", None)
    if state is None:  # libpq's own failures: refused, closed by the server, lost
        return isinstance(exc, psycopg.OperationalError)
    return state.startswith(_POSTGRES_CLASSES) or state in _POSTGRES_CODES


def alarm() -> Alarm:
    """The alarm every component tells of the database out of reach."""
    return Alarm("database_unavailable", "database_recovered",
                 hint="work waits and resumes by itself once the database answers; files taken wait in the spool",
                 settle=SETTLE_SECONDS)


def watch(engine: Engine, database: Alarm) -> None:
    """Raise database on every statement or connection the database refuses, clear it on one it answers."""

    @event.listens_for(engine, "handle_error")
    def _failed(context) -> None:
        if not context.is_pre_ping and is_database_down(context.original_exception):
            database.report("database", context.original_exception)

    @event.listens_for(engine, "after_cursor_execute")
    def _answered(*_args) -> None:
        if database.on:
            database.clear()


def log_failure(event_name: str, **context: object) -> None:
    """In an except block: log the failure with its traceback, unless it is the database out of reach,
    which the database alarm says once for every thread and retry."""
    if not is_database_down(sys.exc_info()[1]):
        log.exception(event_name, **context)
