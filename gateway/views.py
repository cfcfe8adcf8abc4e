"""Read models: flows, invoices, deliveries and directory entries as plain dicts, for whoever is looking.

The CLI prints them (`--json` as they are), the HTTP API sends them: both see the same thing. A Viewer
says who looks: an account sees its own flows and the invoices it sent or received (delivered to it);
an operator sees everything. What a viewer may not see is not found, exactly as what does not exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, select

from gateway.app import App
from gateway.db import session_scope
from gateway.findings import loads
from gateway.lifecycle.statuses import Status
from gateway.models import (AccountSiret, Delivery, DeliveryState, Event, Flow, FlowState, Invoice, InvoiceStatus,
                            Service, Structure, Verdict)


class NotFound(LookupError):
    """No such object, or none this viewer may see; the message says which."""


class NotYet(NotFound):
    """The object exists but what was asked of it is not made yet (a report before the flow is processed)."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking: an account, or an operator (account None)."""

    account: str | None = None

    @property
    def operator(self) -> bool:
        return self.account is None


OPERATOR = Viewer()


@dataclass(frozen=True)
class Page:
    """Some rows, newest first, and the id to continue after (None: no more)."""

    items: list[dict]
    next: str | None


def flow_dict(flow: Flow) -> dict:
    data = flow.model_dump(exclude={"findings", "outcomes", "lease_owner", "lease_expires_at"})
    data["state"] = flow.state.value
    data["errors"] = [f.to_dict() for f in loads(flow.findings)]
    return data


def invoice_dict(invoice: Invoice, supplier: str | None = None) -> dict:
    data = invoice.model_dump(exclude={"findings", "packs"})
    data["supplier"] = supplier
    data["verdict"] = invoice.verdict.value
    data["status_name"] = Status(invoice.status).name if invoice.status else None
    data["errors"] = [f.to_dict() for f in loads(invoice.findings)]
    data["packs"] = json.loads(invoice.packs)
    return data


def delivery_dict(delivery: Delivery) -> dict:
    data = delivery.model_dump(exclude={"lease_owner", "lease_expires_at"})
    data["state"] = delivery.state.value
    return data


def _flows_seen(viewer: Viewer) -> list[Any]:
    return [] if viewer.operator else [Flow.account == viewer.account]


def _invoices_seen(viewer: Viewer) -> list[Any]:
    """An account sees the invoices it sent, and those delivered to it (accepted, addressed to it)."""
    if viewer.operator:
        return []
    return [or_(Flow.account == viewer.account,
                (Invoice.recipient == viewer.account) & (Invoice.verdict == Verdict.ACCEPTED))]


def _deliveries_seen(viewer: Viewer) -> list[Any]:
    """An account sees the files handed to it, and its invoices' deliveries to their recipients."""
    if viewer.operator:
        return []
    return [or_(Delivery.destination == viewer.account, Delivery.kind == "invoice")]


def _page(rows: list, limit: int, to_dict, key) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([to_dict(row) for row in rows], key(rows[-1]) if more and rows else None)


def flows(app: App, viewer: Viewer, *, state: FlowState | None = None, account: str | None = None,
          since: datetime | None = None, until: datetime | None = None, after: str | None = None,
          limit: int = 50) -> Page:
    """The viewer's flows, newest first; after: the `next` of the previous page."""
    query = select(Flow).where(*_flows_seen(viewer)).order_by(Flow.id.desc()).limit(limit + 1)
    for value, clause in ((state, lambda v: Flow.state == v), (account, lambda v: Flow.account == v),
                          (since, lambda v: Flow.received_at >= v), (until, lambda v: Flow.received_at < v),
                          (after, lambda v: Flow.id < v)):
        if value is not None:
            query = query.where(clause(value))
    with session_scope(app.engine, write=False) as session:
        rows = list(session.exec(query).all())
    return _page(rows, limit, flow_dict, lambda f: f.id)


def find_flow(session: Session, viewer: Viewer, flow_id: str) -> Flow:
    flow = session.exec(select(Flow).where(Flow.id == flow_id, *_flows_seen(viewer))).first()
    if flow is None:
        raise NotFound(f"no flow {flow_id}")
    return flow


def flow(app: App, viewer: Viewer, flow_id: str) -> dict:
    """A flow, its invoices (with their verdicts and errors), its deliveries and its whole timeline."""
    with session_scope(app.engine, write=False) as session:
        found = find_flow(session, viewer, flow_id)
        invoices = session.exec(select(Invoice).where(Invoice.flow_id == flow_id).order_by(Invoice.seq)).all()
        deliveries = session.exec(select(Delivery).where(Delivery.flow_id == flow_id, *_deliveries_seen(viewer))
                                  .order_by(Delivery.id)).all()
        timeline = session.exec(select(Event).where(Event.flow_id == flow_id).order_by(Event.id)).all()
    data = flow_dict(found)
    data["invoices"] = [invoice_dict(i, found.account) for i in invoices]
    data["counts"] = {"invoices": len(invoices),
                      "accepted": sum(i.verdict is Verdict.ACCEPTED for i in invoices),
                      "rejected": sum(i.verdict is Verdict.REJECTED for i in invoices)}
    data["deliveries"] = [delivery_dict(d) for d in deliveries]
    data["events"] = [{"at": e.at, "kind": e.kind, "invoice_id": e.invoice_id, **json.loads(e.detail)}
                      for e in timeline]
    return data


_RETURNED = {"ack": ("acknowledged", "{}.ack.xml"), "report": ("report_written", "{}.report.xml")}


def returned_file(app: App, viewer: Viewer, flow_id: str, which: str) -> tuple[str, bytes]:
    """The acknowledgement ("ack") or the integration report ("report") of a flow, as its supplier received
    it: (file name, content), read from the content store (the supplier may have removed its copy)."""
    kind, pattern = _RETURNED[which]
    with session_scope(app.engine, write=False) as session:
        found = find_flow(session, viewer, flow_id)
        events = session.exec(select(Event.detail).where(Event.flow_id == flow_id, Event.kind == kind)
                              .order_by(Event.id.desc())).all()
    name = pattern.format(found.id)
    for detail in events:
        digest = json.loads(detail).get("sha256")
        if digest and app.store.exists(digest):
            return name, app.store.get(digest)
    copy = app.zones.outbox(found.account) / name  # a flow recorded before the digest was
    if events and copy.is_file():
        return name, copy.read_bytes()
    raise NotYet(f"the {'acknowledgement' if which == 'ack' else 'report'} of flow {flow_id} is not written yet")


def document(app: App, viewer: Viewer, invoice_id: str) -> tuple[str, bytes]:
    """An invoice as it was delivered to its recipient (as its supplier sent it): (file name, content)."""
    with session_scope(app.engine, write=False) as session:
        found, _supplier = find_invoice(session, viewer, invoice_id)
    if not found.sha256 or not app.store.exists(found.sha256):
        raise NotFound(f"invoice {invoice_id} has no stored document")
    suffix = ".pdf" if found.name.lower().endswith(".pdf") else ".xml"
    return f"{found.id}{suffix}", app.store.get(found.sha256)


def find_invoice(session: Session, viewer: Viewer, ref: str, by_number: bool = False) -> tuple[Invoice, str]:
    """An invoice the viewer may see, by its gateway id (or else, if by_number, the latest live invoice with
    that number), and the account that sent it."""
    query = select(Invoice, Flow.account).join(Flow, Flow.id == Invoice.flow_id).where(*_invoices_seen(viewer))
    found = session.exec(query.where(Invoice.id == ref)).first()
    if found is None and by_number:
        found = session.exec(query.where(Invoice.number == ref, Invoice.status.is_not(None))
                             .order_by(Invoice.id.desc())).first()
    if found is None:
        raise NotFound(f"no invoice with id {'or number ' if by_number else ''}{ref!r}")
    return found[0], found[1]


def invoice(app: App, viewer: Viewer, ref: str, by_number: bool = False) -> dict:
    """An invoice, its current status and its whole status history (when, who, why), and its deliveries."""
    with session_scope(app.engine, write=False) as session:
        found, supplier = find_invoice(session, viewer, ref, by_number)
        history = session.exec(select(InvoiceStatus).where(InvoiceStatus.invoice_id == found.id)
                               .order_by(InvoiceStatus.id)).all()
        deliveries = session.exec(select(Delivery).where(Delivery.invoice_id == found.id, *_deliveries_seen(viewer))
                                  .order_by(Delivery.id)).all()
    data = invoice_dict(found, supplier)
    data["statuses"] = [{**h.model_dump(exclude={"invoice_id"}), "name": Status(h.status).name} for h in history]
    data["deliveries"] = [delivery_dict(d) for d in deliveries]
    return data


def invoices(app: App, viewer: Viewer, *, number: str | None = None, status: Status | None = None,
             counterparty: str | None = None, issued_from: str | None = None, issued_to: str | None = None,
             after: str | None = None, limit: int = 50) -> Page:
    """Search the viewer's invoices, newest first. counterparty: the other party's SIRET or account name
    (the buyer or recipient of an invoice the viewer sent, the seller or supplier of one it received)."""
    query = (select(Invoice, Flow.account).join(Flow, Flow.id == Invoice.flow_id).where(*_invoices_seen(viewer))
             .order_by(Invoice.id.desc()).limit(limit + 1))
    if counterparty is not None:
        buyer_side = or_(Invoice.buyer_siret == counterparty, Invoice.recipient == counterparty)
        seller_side = or_(Invoice.seller_siret == counterparty, Flow.account == counterparty)
        if viewer.operator:
            query = query.where(or_(buyer_side, seller_side))
        else:
            query = query.where(or_((Flow.account == viewer.account) & buyer_side,
                                    (Invoice.recipient == viewer.account) & seller_side))
    for value, clause in ((number, lambda v: Invoice.number == v), (status, lambda v: Invoice.status == v.value),
                          (issued_from, lambda v: Invoice.issue_date >= v),
                          (issued_to, lambda v: Invoice.issue_date <= v), (after, lambda v: Invoice.id < v)):
        if value is not None:
            query = query.where(clause(value))
    with session_scope(app.engine, write=False) as session:
        rows = list(session.exec(query).all())
    return _page(rows, limit, lambda row: invoice_dict(*row), lambda row: row[0].id)


def deliveries(app: App, state: DeliveryState | None = None, limit: int = 50) -> list[dict]:
    """The most recent deliveries (an operator's view)."""
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if state:
        query = query.where(Delivery.state == state)
    with session_scope(app.engine, write=False) as session:
        return [delivery_dict(d) for d in session.exec(query).all()]


def structure(app: App, siret: str, with_accounts: bool = True) -> dict:
    """A structure of the directory, its flags and its services (and, for an operator, the accounts holding
    its SIRET)."""
    with session_scope(app.engine, write=False) as session:
        found = session.get(Structure, siret)
        if found is None:
            raise NotFound(f"no structure with SIRET {siret}")
        services = session.exec(select(Service).where(Service.siret == siret).order_by(Service.code)).all()
        accounts = session.exec(select(AccountSiret.account).where(AccountSiret.siret == siret)).all()
    data = {**found.model_dump(), "services": [s.model_dump() for s in services]}
    if with_accounts:
        data["accounts"] = list(accounts)
    return data
