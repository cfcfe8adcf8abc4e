"""Recording decisions: one event row per decision, and the same decision as one log line.

Each names the process that made it (`by`: host and pid), since several processes, on several hosts,
may share the work of one database. A transaction's events are written together when it commits, as one
multi-row INSERT: a flow's dozen events would otherwise cost a dozen statements through the ORM.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from gateway.log import log
from gateway.models import Event, utcnow

_HOST = socket.gethostname()
_PENDING = "gateway_events"  # Session.info key: the rows recorded in its transaction, not yet written


def record(session: Session, flow_id: str, kind: str, invoice_id: str | None = None, **detail: Any) -> None:
    """Add an event to the flow's timeline (committed with the caller's transaction) and log it."""
    detail = {**detail, "by": f"{_HOST}:{os.getpid()}"}
    session.info.setdefault(_PENDING, []).append(
        {"flow_id": flow_id, "invoice_id": invoice_id, "at": utcnow(), "kind": kind,
         "detail": json.dumps(detail, ensure_ascii=False, default=str)})
    fields = {"invoice_id": invoice_id} if invoice_id else {}
    log.info(kind, flow_id=flow_id, **fields, **detail)


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    rows = session.info.pop(_PENDING, None)
    if rows:
        session.connection().execute(insert(Event.__table__), rows)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
