"""Recording decisions: one event row per decision, and one log line per step of a flow.

Each event names the process that made it (`by`: host and pid), since several processes, on several hosts,
may share the work of one database. A transaction's events are written together when it commits, as one
multi-row INSERT: a flow's dozen events would otherwise cost a dozen statements through the ORM.

The log follows the commit, so it tells only decisions that stand: a transaction rolled back (no room left on
disk, a crash of the database) and made again does not log its decisions twice. At the default level (info) it
has one line per step of a flow (step: acknowledged, judged, delivered, finished), which says what the step came
to; each event has a line of its own at debug level, and every event is in the database (`gateway flows show`).
A delivery's failure is no step of a flow, and an operator must see it: it keeps its own line at info.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from typing import Any

import structlog
from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from gateway.data.models import Event, utcnow
from gateway.ops.log import log

_HOST = socket.gethostname()
_PENDING = "gateway_events"  # Session.info key: the rows and lines recorded in its transaction, not yet written
_WRITTEN = "gateway_events_written"  # Session.info key: their log lines, once written, until the commit
_ALONE = frozenset({"delivery_failed", "delivery_dead"})  # the events logged at info on their own


def record(session: Session, flow_id: str, kind: str, invoice_id: str | None = None, **detail: Any) -> None:
    """Add an event to the flow's timeline, and its line to the log (at debug level), when the caller's transaction
    commits."""
    detail = {**detail, "by": f"{_HOST}:{os.getpid()}"}
    row = {"flow_id": flow_id, "invoice_id": invoice_id, "at": utcnow(), "kind": kind,
           "detail": json.dumps(detail, ensure_ascii=False, default=str)}
    level = logging.INFO if kind in _ALONE else logging.DEBUG
    session.info.setdefault(_PENDING, []).append((row, level, kind, _line(flow_id, invoice_id, detail)))


def step(session: Session, flow_id: str, name: str, **summary: Any) -> None:
    """Log a step of the flow's processing, its one line at info level (name, then what it came to: summary), when
    the caller's transaction, the one recording the step's events, commits."""
    session.info.setdefault(_PENDING, []).append((None, logging.INFO, name, _line(flow_id, None, summary)))


def _line(flow_id: str, invoice_id: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    """A log line's fields, with the log context of the moment (the account of a batch's flow), not of the commit."""
    return {**structlog.contextvars.get_contextvars(), "flow_id": flow_id,
            **({"invoice_id": invoice_id} if invoice_id else {}), **fields}


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        rows = [row for row, _level, _kind, _line in pending if row is not None]
        if rows:
            session.connection().execute(insert(Event.__table__), rows)
        session.info.setdefault(_WRITTEN, []).extend((level, kind, line) for _row, level, kind, line in pending)


@event.listens_for(Session, "after_commit")
def _log(session: Session) -> None:
    lines = session.info.pop(_WRITTEN, ())
    if lines:
        logger = log.bind()  # resolved once for the commit: a debug line left out costs a comparison
        for level, kind, line in lines:
            logger.log(level, kind, **line)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_WRITTEN, None)
