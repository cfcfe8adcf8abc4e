"""Queueing notifications: an event, told as one delivery per subscription that wants it, in the caller's
transaction (written when it commits: gateway.data.deferred), so that the event and its notifications commit
together or not at all.

An event is a JSON object: {"id": "evt_...", "type": "invoice.status" | "flow.finished", "time": ..., "data":
{...}}. Its id is the same in every copy (webhook body and header, e-mail Message-ID): a receiver that gets it
twice (a crash between a POST and the record of its answer) knows it. The deliveries are the delivery
queue's, never the flow worker's: a slow webhook holds up no flow.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlmodel import Session

from gateway.app import App
from gateway.data import deferred, events, tables
from gateway.data.findings import loads
from gateway.data.models import Flow, Invoice, Verdict, as_utc, utcnow
from gateway.engine import wakeups
from gateway.lifecycle.statuses import Status
from gateway.notify import FLOW_FINISHED, INVOICE_STATUS, mail


def invoice_status(app: App, session: Session, invoice: Invoice, row: Row[Any]) -> None:
    """Tell the invoice's supplier and its recipient (their subscriptions to invoice.status) of its new status (row:
    its invoicestatus row)."""
    supplier = session.get_one(Flow, invoice.flow_id).account
    status = Status(row.status)
    data = {"invoice_id": invoice.id, "number": invoice.number, "issue_date": invoice.issue_date,
            "flow_id": invoice.flow_id, "supplier": supplier, "recipient": invoice.recipient,
            "status": status.name, "status_code": status.value, "reason_code": row.reason_code,
            "reason": row.reason, "actor": row.actor, "at": _time(row.at)}
    accounts = {supplier, invoice.recipient} - {None}
    _queue(app, session, accounts, INVOICE_STATUS, data, invoice.flow_id, invoice.id, f"{invoice.id}.status-{row.id}")


def flow_finished(app: App, session: Session, flow: Flow, invoices: list[Invoice], finished_at: datetime) -> None:
    """Tell the flow's account (its subscriptions to flow.finished) how its flow ended."""
    rejected = [i for i in invoices if i.verdict == Verdict.REJECTED]
    data = {"flow_id": flow.id, "name": flow.original_name, "kind": flow.kind, "channel": flow.channel,
            "state": flow.state.value, "received_at": _time(flow.received_at), "finished_at": _time(finished_at),
            "counts": {"invoices": len(invoices), "accepted": len(invoices) - len(rejected), "rejected": len(rejected)},
            "errors": sorted({f.rule for f in loads(flow.findings) if f.fatal}),
            "rejected": [{"invoice_id": i.id, "number": i.number,
                          "rules": [f.rule for f in loads(i.findings) if f.fatal]} for i in rejected]}
    _queue(app, session, {flow.account}, FLOW_FINISHED, data, flow.id, None, f"{flow.id}.finished")


def _time(moment: datetime) -> str:
    return as_utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _queue(app: App, session: Session, accounts: set[str], kind: str, data: dict, flow_id: str,
           invoice_id: str | None, name: str) -> None:
    """One delivery per subscription of accounts to events of kind; the delivery workers are woken at commit."""
    wanted = sorted((s for account in accounts for s in app.reference.subscriptions(session, account)
                     if kind in json.loads(s.events)), key=lambda s: s.id)
    if not wanted:
        return
    event = {"id": f"evt_{uuid.uuid4().hex}", "type": kind, "time": _time(utcnow()), "data": data}
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    for subscription in wanted:
        content, suffix = ((body, ".json") if subscription.kind == "webhook"
                           else (mail.message(app.settings.smtp.sender, subscription.target, event), ".eml"))
        deferred.add(session, tables.delivery, {
            "kind": subscription.kind, "invoice_id": invoice_id, "flow_id": flow_id,
            "destination": subscription.account, "file_name": name + suffix, "sha256": app.store.put(content),
            "subscription_id": subscription.id})
        events.record(session, flow_id, "notification_queued", invoice_id=invoice_id, event_type=kind,
                      event_id=event["id"], recipient=subscription.account, channel=subscription.kind,
                      subscription=subscription.id)
    wakeups.at_commit(app, session)
