"""Read models: flows, invoices, deliveries and directory entries as plain dicts, for whoever is looking.

The CLI prints them (`--json` as they are), the HTTP API sends them: both see the same thing. A Viewer
says who looks: an account sees its own flows and the invoices it sent or received (delivered to it);
an operator sees everything. What a viewer may not see is not found, exactly as what does not exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, select

from gateway.app import App
from gateway.db import session_scope
from gateway.findings import loads
from gateway.lifecycle.statuses import EQUIVALENTS, Status
from gateway.models import (AccountSiret, Delivery, DeliveryState, Event, Flow, FlowState, Invoice, InvoiceStatus,
                            Service, Structure, Verdict)


class NotFound(LookupError):
    """No such object, or none this viewer may see; the message says which."""


class NotYet(NotFound):
    """The object exists but what was asked of it is not made yet (a report before the flow is processed)."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a supplier account, a recipient account (receives), or an operator (account None)."""

    account: str | None = None
    receives: bool = False  # a recipient: it sees the invoices delivered to it; a supplier sees those it sent

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
    data = flow.model_dump(exclude={"findings", "outcomes", "lease_owner", "lease_expires_at", "turn"})
    data["state"] = flow.state.value
    data["errors"] = [f.to_dict() for f in loads(flow.findings)]
    return data


def invoice_dict(invoice: Invoice, supplier: str | None = None, buyer_name: str | None = None) -> dict:
    data = invoice.model_dump(exclude={"findings", "packs"})
    data["supplier"] = supplier
    data["buyer_name"] = buyer_name  # the buyer's name in the directory
    data["verdict"] = invoice.verdict.value
    data["status_name"] = Status(invoice.status).name if invoice.status else None
    data["errors"] = [f.to_dict() for f in loads(invoice.findings)]
    data["packs"] = json.loads(invoice.packs)
    return data


def cdar_dict(status: str | None) -> dict | None:
    """What the supplier is told of a status in the reform's terms: CDAR code, label and, for a code that
    stands for several statuses (204), the comment naming this one."""
    if status is None:
        return None
    equivalent = EQUIVALENTS[Status(status)]
    return {"code": equivalent.cdar, "label": equivalent.cdar_label, "comment": equivalent.comment}


def delivery_dict(delivery: Delivery) -> dict:
    data = delivery.model_dump(exclude={"lease_owner", "lease_expires_at"})
    data["state"] = delivery.state.value
    return data


def _flows_seen(viewer: Viewer) -> list[Any]:
    return [] if viewer.operator else [Flow.account == viewer.account]


def _invoices_seen(viewer: Viewer) -> list[Any]:
    """A supplier sees the invoices it sent, a recipient those delivered to it (accepted, addressed to it): each
    through its own index (the account's role says which, as only suppliers deposit invoices)."""
    if viewer.operator:
        return []
    if viewer.receives:
        return [Invoice.recipient == viewer.account, Invoice.verdict == Verdict.ACCEPTED]
    return [Invoice.account == viewer.account]


def _deliveries_seen(viewer: Viewer) -> list[Any]:
    """An account sees the files handed to it, and its invoices' deliveries to their recipients."""
    if viewer.operator:
        return []
    return [or_(Delivery.destination == viewer.account, Delivery.kind == "invoice")]


_BUYER = Structure.siret == Invoice.buyer_siret


def _page(rows: list, limit: int, to_dict, key) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([to_dict(row) for row in rows], key(rows[-1]) if more and rows else None)


def flows(app: App, viewer: Viewer, *, state: FlowState | None = None, account: str | None = None,
          channel: str | None = None, since: datetime | None = None, until: datetime | None = None,
          after: str | None = None, limit: int = 50) -> Page:
    """The viewer's flows, newest first, received in [since, until) through channel; after: the `next` of the
    previous page."""
    query = select(Flow).where(*_flows_seen(viewer)).order_by(Flow.id.desc()).limit(limit + 1)
    for value, clause in ((state, lambda v: Flow.state == v), (account, lambda v: Flow.account == v),
                          (channel, lambda v: Flow.channel == v),
                          (since, lambda v: Flow.received_at >= v), (until, lambda v: Flow.received_at < v),
                          (after, lambda v: Flow.id < v)):
        if value is not None:
            query = query.where(clause(value))
    with session_scope(app.engine, write=False) as session:
        rows = list(session.exec(query).all())
    return _page(rows, limit, flow_dict, lambda f: f.id)


def channels(app: App) -> list[str]:
    """The channels flows have come through (zone, sftp, sftp-pull, api...), for a filter to offer."""
    with session_scope(app.engine, write=False) as session:
        return sorted(session.exec(select(Flow.channel).distinct()).all())


def find_flow(session: Session, viewer: Viewer, flow_id: str) -> Flow:
    flow = session.exec(select(Flow).where(Flow.id == flow_id, *_flows_seen(viewer))).first()
    if flow is None:
        raise NotFound(f"no flow {flow_id}")
    return flow


def flow(app: App, viewer: Viewer, flow_id: str) -> dict:
    """A flow, its invoices (with their verdicts and errors), its deliveries and its whole timeline."""
    with session_scope(app.engine, write=False) as session:
        found = find_flow(session, viewer, flow_id)
        invoices = session.exec(select(Invoice, Structure.name).outerjoin(Structure, _BUYER)
                                .where(Invoice.flow_id == flow_id).order_by(Invoice.seq)).all()
        deliveries = session.exec(select(Delivery).where(Delivery.flow_id == flow_id, *_deliveries_seen(viewer))
                                  .order_by(Delivery.id)).all()
        timeline = session.exec(select(Event).where(Event.flow_id == flow_id).order_by(Event.id)).all()
    data = flow_dict(found)
    data["invoices"] = [invoice_dict(i, found.account, name) for i, name in invoices]
    data["counts"] = {"invoices": len(invoices),
                      "accepted": sum(i.verdict is Verdict.ACCEPTED for i, _name in invoices),
                      "rejected": sum(i.verdict is Verdict.REJECTED for i, _name in invoices)}
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
    query = select(Invoice, Invoice.account).where(*_invoices_seen(viewer))
    found = by_reference(session, query, ref, by_number)
    return found[0], found[1]


def by_reference(session: Session, query: Any, ref: str, by_number: bool) -> Any:
    """The first row of query (which selects invoices) for the invoice id ref or else, if by_number, for the
    latest live invoice with that number; NotFound if none."""
    found = session.exec(query.where(Invoice.id == ref)).first()
    if found is None and by_number:
        found = session.exec(query.where(Invoice.number == ref, Invoice.status.is_not(None))
                             .order_by(Invoice.id.desc())).first()
    if found is None:
        raise NotFound(f"no invoice with id {'or number ' if by_number else ''}{ref!r}")
    return found


def invoice(app: App, viewer: Viewer, ref: str, by_number: bool = False) -> dict:
    """An invoice, its current status and its whole status history (when, who, why), and its deliveries."""
    with session_scope(app.engine, write=False) as session:
        found, supplier = find_invoice(session, viewer, ref, by_number)
        history = session.exec(select(InvoiceStatus).where(InvoiceStatus.invoice_id == found.id)
                               .order_by(InvoiceStatus.id)).all()
        deliveries = session.exec(select(Delivery).where(Delivery.invoice_id == found.id, *_deliveries_seen(viewer))
                                  .order_by(Delivery.id)).all()
        buyer = session.get(Structure, found.buyer_siret) if found.buyer_siret else None
    data = invoice_dict(found, supplier, buyer.name if buyer else None)
    data["cdar"] = cdar_dict(found.status)
    data["statuses"] = [{**h.model_dump(exclude={"invoice_id"}), "name": Status(h.status).name,
                         "cdar": cdar_dict(h.status)} for h in history]
    data["deliveries"] = [delivery_dict(d) for d in deliveries]
    return data


SORTS = {"received": Invoice.id, "number": Invoice.number, "issued": Invoice.issue_date, "amount": Invoice.amount,
         "status": Invoice.status}


def _searched(viewer: Viewer, *, number: str | None = None, status: Status | None = None,
              verdict: Verdict | None = None, counterparty: str | None = None, issued_from: str | None = None,
              issued_to: str | None = None, amount_min: Decimal | None = None,
              amount_max: Decimal | None = None) -> list[Any]:
    """The clauses of a search of the viewer's invoices (a query joining the buyer's Structure if counterparty)."""
    clauses = _invoices_seen(viewer)
    if counterparty is not None:
        buyer_side = or_(Invoice.buyer_siret == counterparty,
                         Invoice.recipient.icontains(counterparty, autoescape=True),
                         Structure.name.icontains(counterparty, autoescape=True))
        seller_side = or_(Invoice.seller_siret == counterparty, Invoice.account.icontains(counterparty, autoescape=True))
        clauses.append(or_(buyer_side, seller_side) if viewer.operator else
                       seller_side if viewer.receives else buyer_side)
    for value, clause in ((number, lambda v: Invoice.number == v), (status, lambda v: Invoice.status == v.value),
                          (verdict, lambda v: Invoice.verdict == v),
                          (issued_from, lambda v: Invoice.issue_date >= v),
                          (issued_to, lambda v: Invoice.issue_date <= v),
                          (amount_min, lambda v: Invoice.amount >= float(v)),
                          (amount_max, lambda v: Invoice.amount <= float(v))):
        if value is not None:
            clauses.append(clause(value))
    return clauses


def _invoice_rows():
    return select(Invoice, Invoice.account, Structure.name).outerjoin(Structure, _BUYER)


def invoices(app: App, viewer: Viewer, *, sort: str = "received", descending: bool = True, after: str | None = None,
             offset: int = 0, limit: int = 50, **search: Any) -> Page:
    """Search the viewer's invoices, newest first unless sort (a key of SORTS) says otherwise; after: the `next`
    of the previous page (newest first only), or offset: rows to skip. search: number, status (a Status),
    verdict, counterparty (the other party's SIRET, or part of its account's or directory name: the buyer or
    recipient of an invoice the viewer sent, the seller or supplier of one it received), issued_from and
    issued_to (YYYY-MM-DD), amount_min and amount_max (the total)."""
    column = SORTS[sort]
    newest = Invoice.id.desc() if descending else Invoice.id.asc()
    order = [newest] if sort == "received" else [(column.desc() if descending else column.asc()).nulls_last(), newest]
    query = (_invoice_rows().where(*_searched(viewer, **search)).order_by(*order)
             .offset(offset).limit(limit + 1))
    if after is not None:
        query = query.where(Invoice.id < after)
    with session_scope(app.engine, write=False) as session:
        rows = list(session.exec(query).all())
    return _page(rows, limit, lambda row: invoice_dict(*row), lambda row: row[0].id)


def status_counts(app: App, viewer: Viewer, **search: Any) -> list[dict]:
    """How many of the viewer's invoices (searched as by invoices()) are in each status, by code; those
    rejected at integration (no status) under None."""
    query = select(Invoice.status, func.count()).where(*_searched(viewer, **search)).group_by(Invoice.status)
    if search.get("counterparty") is not None:  # the only clause naming the buyer's structure
        query = query.outerjoin(Structure, _BUYER)
    with session_scope(app.engine, write=False) as session:
        counted = dict(session.exec(query).all())
    return [{"status": code, "name": Status(code).name if code else None, "count": counted[code]}
            for code in sorted(counted, key=lambda code: code or "")]


ALERTING = (Status.REJETEE, Status.SUSPENDUE, Status.A_RECYCLER)


def alerts(app: App, viewer: Viewer, limit: int = 20, **search: Any) -> list[dict]:
    """The viewer's invoices that ask for action, newest first: rejected at integration (their errors say
    why), or REJETEE, SUSPENDUE or A_RECYCLER (their last status says why: `reason`)."""
    query = (_invoice_rows().where(*_searched(viewer, **search))
             .where(or_(Invoice.status.in_([s.value for s in ALERTING]), Invoice.verdict == Verdict.REJECTED))
             .order_by(Invoice.id.desc()).limit(limit))
    with session_scope(app.engine, write=False) as session:
        rows = session.exec(query).all()
        ids = [row[0].id for row in rows]
        last = {h.invoice_id: h for h in session.exec(select(InvoiceStatus).where(InvoiceStatus.invoice_id.in_(ids))
                                                      .order_by(InvoiceStatus.id)).all()}
    found = []
    for row in rows:
        data, status = invoice_dict(*row), last.get(row[0].id)
        data["reason"] = status.model_dump(exclude={"invoice_id"}) if status else None
        found.append(data)
    return found


def delivered_file(app: App, viewer: Viewer, invoice_id: str, delivery_id: int) -> tuple[str, bytes]:
    """A file delivered about an invoice the viewer may see (the invoice to its recipient, a status-return
    to its supplier), one the viewer may see: (file name, content)."""
    with session_scope(app.engine, write=False) as session:
        find_invoice(session, viewer, invoice_id)
        found = session.exec(select(Delivery).where(Delivery.id == delivery_id, Delivery.invoice_id == invoice_id,
                                                    Delivery.kind.in_(["invoice", "status"]),
                                                    *_deliveries_seen(viewer))).first()
    if found is None or not app.store.exists(found.sha256):
        raise NotFound(f"no file {delivery_id} for invoice {invoice_id}")
    return found.file_name, app.store.get(found.sha256)


def deliveries(app: App, state: DeliveryState | None = None, limit: int = 50) -> list[dict]:
    """The most recent deliveries (an operator's view)."""
    query = select(Delivery).order_by(Delivery.id.desc()).limit(limit)
    if state:
        query = query.where(Delivery.state == state)
    with session_scope(app.engine, write=False) as session:
        return [delivery_dict(d) for d in session.exec(query).all()]


def structures(app: App, text: str, limit: int = 50) -> list[dict]:
    """The directory's structures whose SIRET begins with text or whose name holds it (any case), by name."""
    query = (select(Structure).where(or_(Structure.siret.startswith(text, autoescape=True),
                                         Structure.name.icontains(text, autoescape=True)))
             .order_by(Structure.name, Structure.siret).limit(limit))
    with session_scope(app.engine, write=False) as session:
        return [s.model_dump() for s in session.exec(query).all()]


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
