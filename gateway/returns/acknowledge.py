"""Acknowledging flows: each acknowledgement of receipt written to its account's out/, then recorded once.

Intake acknowledges what it has stored; a worker acknowledges a flow intake left unacknowledged (it died, or
found no room to write it). Both may get here for the same flow: the row lock (SQLite's write lock) of the
update lets the first record the event and the second see it was; the file has a fixed name and content.
"""

from __future__ import annotations

from sqlalchemy import update

from gateway.app import App
from gateway.data import events, store, tables
from gateway.data.db import session_scope
from gateway.data.models import Flow
from gateway.returns.ack import build_ack


def acknowledge_all(app: App, flows: list[Flow]) -> None:
    """Write the acknowledgements of flows, then record them in one transaction, each once; they are fsynced
    together and named, then their folders fsynced once each, before it (store.synced_dirs)."""
    with store.synced_dirs():
        digests = {flow.id: app.emit(flow.account, f"{flow.id}.ack.xml", build_ack(flow)) for flow in flows}
    by_id = {flow.id: flow for flow in flows}
    table = tables.flow
    with session_scope(app.engine) as session:
        done = session.execute(update(table).where(table.c.id.in_(digests), table.c.acknowledged.is_(False))
                               .values(acknowledged=True).returning(table.c.id)).scalars().all()
        for flow_id in sorted(done):
            flow = by_id[flow_id]
            events.record(session, flow_id, "acknowledged", account=flow.account, sha256=digests[flow_id])
            events.step(session, flow_id, "flow_acknowledged", account=flow.account, channel=flow.channel,
                        original_name=flow.original_name, size=flow.size)  # intake's step: received, stored, told
    for flow in flows:
        flow.acknowledged = True
