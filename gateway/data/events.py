"""Recording decisions: one event row per decision, and one log line per step of a flow.

Each event names the process that made it (`by`: host and pid), since several processes, on several hosts,
may share the work of one database. A transaction's events are written together when it commits, as one
multi-row INSERT (gateway.data.deferred): a flow's dozen events would otherwise cost a dozen statements through the ORM.

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
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from gateway.data import deferred, tables
from gateway.data.tables import utcnow
from gateway.ops.log import log

_HOST = socket.gethostname()
_LINES = "gateway_event_lines"  # Session.info key: the log lines of its transaction's events and steps
_ALONE = frozenset({"delivery_failed", "delivery_dead"})  # the events logged at info on their own


def record(session: Session, flow_id: str, kind: str, invoice_id: str | None = None, **detail: Any) -> None:
    """Add an event to the flow's timeline, and its line to the log (at debug level), when the caller's transaction
    commits."""
    detail = {**detail, "by": f"{_HOST}:{os.getpid()}"}
    row = {"flow_id": flow_id, "invoice_id": invoice_id, "at": utcnow(), "kind": kind,
           "detail": json.dumps(detail, ensure_ascii=False, default=str)}
    deferred.add(session, tables.event, row)
    level = logging.INFO if kind in _ALONE else logging.DEBUG
    session.info.setdefault(_LINES, []).append((level, kind, _line(flow_id, invoice_id, detail)))


def step(session: Session, flow_id: str, name: str, **summary: Any) -> None:
    """Log a step of the flow's processing, its one line at info level (name, then what it came to: summary), when
    the caller's transaction, the one recording the step's events, commits."""
    session.info.setdefault(_LINES, []).append((logging.INFO, name, _line(flow_id, None, summary)))


def _line(flow_id: str, invoice_id: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    """A log line's fields, with the log context of the moment (the account of a batch's flow), not of the commit."""
    return {**structlog.contextvars.get_contextvars(), "flow_id": flow_id,
            **({"invoice_id": invoice_id} if invoice_id else {}), **fields}


@event.listens_for(Session, "after_commit")
def _log(session: Session) -> None:
    lines = session.info.pop(_LINES, ())
    if lines:
        logger = log.bind()  # resolved once for the commit: a debug line left out costs a comparison
        for level, kind, line in lines:
            logger.log(level, kind, **line)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:  # as gateway.data.deferred forgets the rows of the events
        session.info.pop(_LINES, None)
