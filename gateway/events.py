"""Recording decisions: one event row per decision, and the same decision as one log line.

Each names the process that made it (`by`: host and pid), since several processes, on several hosts,
may share the work of one database.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from sqlmodel import Session

from gateway.log import log
from gateway.models import Event

_HOST = socket.gethostname()


def record(session: Session, flow_id: str, kind: str, invoice_id: str | None = None, **detail: Any) -> None:
    """Add an event to the flow's timeline (committed with the caller's transaction) and log it."""
    detail = {**detail, "by": f"{_HOST}:{os.getpid()}"}
    session.add(Event(flow_id=flow_id, invoice_id=invoice_id, kind=kind,
                      detail=json.dumps(detail, ensure_ascii=False, default=str)))
    fields = {"invoice_id": invoice_id} if invoice_id else {}
    log.info(kind, flow_id=flow_id, **fields, **detail)
