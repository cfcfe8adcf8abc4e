"""Recording decisions: one event row per decision, and the same decision as one log line.

Each names the process that made it (`by`: host and pid), since several processes, on several hosts,
may share the work of one database. A transaction's events are written together when it commits, as one
multi-row INSERT: a flow's dozen events would otherwise cost a dozen statements through the ORM. Their
log lines follow the commit, so the log tells only decisions that stand: a transaction rolled back (no
room left on disk, a crash of the database) and made again does not log its decisions twice.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

import structlog
from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from gateway.log import log
from gateway.models import Event, utcnow

_HOST = socket.gethostname()
_PENDING = "gateway_events"  # Session.info key: the rows recorded in its transaction, not yet written
_WRITTEN = "gateway_events_written"  # Session.info key: their log lines, once written, until the commit


def record(session: Session, flow_id: str, kind: str, invoice_id: str | None = None, **detail: Any) -> None:
    """Add an event to the flow's timeline and log it, both when the caller's transaction commits."""
    detail = {**detail, "by": f"{_HOST}:{os.getpid()}"}
    row = {"flow_id": flow_id, "invoice_id": invoice_id, "at": utcnow(), "kind": kind,
           "detail": json.dumps(detail, ensure_ascii=False, default=str)}
    # with the log context of the moment (the account of a batch's flow), not of the commit's
    line = {**structlog.contextvars.get_contextvars(), "flow_id": flow_id,
            **({"invoice_id": invoice_id} if invoice_id else {}), **detail}
    session.info.setdefault(_PENDING, []).append((row, kind, line))


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.connection().execute(insert(Event.__table__), [row for row, _kind, _line in pending])
        session.info.setdefault(_WRITTEN, []).extend((kind, line) for _row, kind, line in pending)


@event.listens_for(Session, "after_commit")
def _log(session: Session) -> None:
    for kind, line in session.info.pop(_WRITTEN, ()):
        log.info(kind, **line)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_WRITTEN, None)
