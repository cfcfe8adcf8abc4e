"""Read models: flows, invoices, deliveries and directory entries as plain dicts, for whoever is looking.

The CLI prints them (`--json` as they are), the HTTP API sends them: both see the same thing. A Viewer
says who looks: an account sees its own flows and the invoices it sent or received (delivered to it);
an operator sees everything. What a viewer may not see is not found, exactly as what does not exist.

They read rows with SQLAlchemy Core (gateway.data.tables, row by row as mappings) on a plain connection (db.reading): a
read builds no ORM objects, and a command that only reads (`gateway flows list`, `invoices show`) never imports the
ORM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, Table, func, or_, select
from sqlalchemy.engine import Connection

from gateway.app import App
from gateway.data import tables
from gateway.data.db import reading
from gateway.data.findings import loads
from gateway.data.tables import DeliveryState, FlowState, Verdict
from gateway.lifecycle.statuses import EQUIVALENTS, Status

_flow, _invoice, _delivery, _event = tables.flow, tables.invoice, tables.delivery, tables.event
_status, _structure, _service = tables.invoice_status, tables.structure, tables.service


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


def _columns(row: Row, table: Table, exclude: frozenset[str] = frozenset()) -> dict:
    """table's columns in row (which may select more), by name, but those excluded."""
    return {column.key: row._mapping[column] for column in table.columns if column.key not in exclude}


_FLOW_HIDDEN = frozenset({"findings", "outcomes", "lease_owner", "lease_expires_at", "turn"})
_STATUS_HIDDEN = frozenset({"invoice_id"})  # an invoice's status, shown with its invoice


def flow_dict(flow: Row) -> dict:
    data = _columns(flow, _flow, _FLOW_HIDDEN)
    data["state"] = flow.state.value
    data["errors"] = [f.to_dict() for f in loads(flow.findings)]
    return data


def invoice_dict(invoice: Row, supplier: str | None = None, buyer_name: str | None = None) -> dict:
    data = _columns(invoice, _invoice, frozenset({"findings", "packs"}))
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


def delivery_dict(delivery: Row) -> dict:
    data = _columns(delivery, _delivery, frozenset({"lease_owner", "lease_expires_at"}))
    data["state"] = delivery.state.value
    return data


def _flows_seen(viewer: Viewer) -> list[Any]:
    return [] if viewer.operator else [_flow.c.account == viewer.account]


def _invoices_seen(viewer: Viewer) -> list[Any]:
    """A supplier sees the invoices it sent, a recipient those delivered to it (accepted, addressed to it): each
    through its own index (the account's role says which, as only suppliers deposit invoices)."""
    if viewer.operator:
        return []
    if viewer.receives:
        return [_invoice.c.recipient == viewer.account, _invoice.c.verdict == Verdict.ACCEPTED]
    return [_invoice.c.account == viewer.account]


def _deliveries_seen(viewer: Viewer) -> list[Any]:
    """An account sees the files handed to it, and its invoices' deliveries to their recipients."""
    if viewer.operator:
        return []
    return [or_(_delivery.c.destination == viewer.account, _delivery.c.kind == "invoice")]


_BUYER = _structure.c.siret == _invoice.c.buyer_siret


def _page(rows: list, limit: int, to_dict, key) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([to_dict(row) for row in rows], key(rows[-1]) if more and rows else None)


def flows(app: App, viewer: Viewer, *, state: FlowState | None = None, account: str | None = None,
          channel: str | None = None, since: datetime | None = None, until: datetime | None = None,
          after: str | None = None, limit: int = 50) -> Page:
    """The viewer's flows, newest first, received in [since, until) through channel; after: the `next` of the
    previous page."""
    column = _flow.c
    query = select(_flow).where(*_flows_seen(viewer)).order_by(column.id.desc()).limit(limit + 1)
    for value, clause in ((state, lambda v: column.state == v), (account, lambda v: column.account == v),
                          (channel, lambda v: column.channel == v),
                          (since, lambda v: column.received_at >= v), (until, lambda v: column.received_at < v),
                          (after, lambda v: column.id < v)):
        if value is not None:
            query = query.where(clause(value))
    with reading(app.engine) as connection:
        rows = list(connection.execute(query).all())
    return _page(rows, limit, flow_dict, lambda f: f.id)


def channels(app: App) -> list[str]:
    """The channels flows have come through (zone, sftp, sftp-pull, api...), for a filter to offer."""
    with reading(app.engine) as connection:
        return sorted(connection.scalars(select(_flow.c.channel).distinct()).all())


def find_flow(connection: Connection, viewer: Viewer, flow_id: str) -> Row:
    flow = connection.execute(select(_flow).where(_flow.c.id == flow_id, *_flows_seen(viewer))).first()
    if flow is None:
        raise NotFound(f"no flow {flow_id}")
    return flow


def flow(app: App, viewer: Viewer, flow_id: str) -> dict:
    """A flow, its invoices (with their verdicts and errors), its deliveries and its whole timeline."""
    with reading(app.engine) as connection:
        found = find_flow(connection, viewer, flow_id)
        invoices = connection.execute(_invoice_rows().where(_invoice.c.flow_id == flow_id)
                                   .order_by(_invoice.c.seq)).all()
        deliveries = connection.execute(select(_delivery).where(_delivery.c.flow_id == flow_id,
                                                             *_deliveries_seen(viewer)).order_by(_delivery.c.id)).all()
        timeline = connection.execute(select(_event).where(_event.c.flow_id == flow_id).order_by(_event.c.id)).all()
    data = flow_dict(found)
    data["invoices"] = [invoice_dict(i, found.account, i.buyer_name) for i in invoices]
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
    with reading(app.engine) as connection:
        found = find_flow(connection, viewer, flow_id)
        events = connection.scalars(select(_event.c.detail).where(_event.c.flow_id == flow_id, _event.c.kind == kind)
                                 .order_by(_event.c.id.desc())).all()
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
    with reading(app.engine) as connection:
        found, _supplier = find_invoice(connection, viewer, invoice_id)
    if not found.sha256 or not app.store.exists(found.sha256):
        raise NotFound(f"invoice {invoice_id} has no stored document")
    suffix = ".pdf" if found.name.lower().endswith(".pdf") else ".xml"
    return f"{found.id}{suffix}", app.store.get(found.sha256)


def find_invoice(connection: Connection, viewer: Viewer, ref: str, by_number: bool = False) -> tuple[Row, str]:
    """An invoice the viewer may see, by its gateway id (or else, if by_number, the latest live invoice with
    that number), and the account that sent it."""
    found = by_reference(connection, select(_invoice).where(*_invoices_seen(viewer)), ref, by_number)
    return found, found.account


def by_reference(session: Any, query: Any, ref: str, by_number: bool) -> Any:
    """The first row of query (which selects invoices: Core rows on a Connection, or the models of sqlmodel's
    select in its Session) for the invoice id ref or else, if by_number, for the latest live invoice with that
    number; NotFound if none."""
    column = _invoice.c
    run = getattr(session, "exec", session.execute)  # sqlmodel's Session.exec gives its select's models
    found = run(query.where(column.id == ref)).first()
    if found is None and by_number:
        found = run(query.where(column.number == ref, column.status.is_not(None)).order_by(column.id.desc())).first()
    if found is None:
        raise NotFound(f"no invoice with id {'or number ' if by_number else ''}{ref!r}")
    return found


def invoice(app: App, viewer: Viewer, ref: str, by_number: bool = False) -> dict:
    """An invoice, its current status and its whole status history (when, who, why), and its deliveries."""
    with reading(app.engine) as connection:
        found, supplier = find_invoice(connection, viewer, ref, by_number)
        history = connection.execute(select(_status).where(_status.c.invoice_id == found.id)
                                  .order_by(_status.c.id)).all()
        deliveries = connection.execute(select(_delivery).where(_delivery.c.invoice_id == found.id,
                                                             *_deliveries_seen(viewer)).order_by(_delivery.c.id)).all()
        buyer = connection.scalar(select(_structure.c.name).where(_structure.c.siret == found.buyer_siret)) \
            if found.buyer_siret else None
    data = invoice_dict(found, supplier, buyer)
    data["cdar"] = cdar_dict(found.status)
    data["statuses"] = [{**_columns(h, _status, _STATUS_HIDDEN), "name": Status(h.status).name,
                         "cdar": cdar_dict(h.status)} for h in history]
    data["deliveries"] = [delivery_dict(d) for d in deliveries]
    return data


SORTS = {"received": _invoice.c.id, "number": _invoice.c.number, "issued": _invoice.c.issue_date,
         "amount": _invoice.c.amount, "status": _invoice.c.status}


def _searched(viewer: Viewer, *, number: str | None = None, status: Status | None = None,
              verdict: Verdict | None = None, counterparty: str | None = None, issued_from: str | None = None,
              issued_to: str | None = None, amount_min: Decimal | None = None,
              amount_max: Decimal | None = None) -> list[Any]:
    """The clauses of a search of the viewer's invoices (a query joining the buyer's Structure if counterparty)."""
    clauses = _invoices_seen(viewer)
    if counterparty is not None:
        column = _invoice.c
        buyer_side = or_(column.buyer_siret == counterparty, column.recipient.icontains(counterparty, autoescape=True),
                         _structure.c.name.icontains(counterparty, autoescape=True))
        seller_side = or_(column.seller_siret == counterparty, column.account.icontains(counterparty, autoescape=True))
        clauses.append(or_(buyer_side, seller_side) if viewer.operator else
                       seller_side if viewer.receives else buyer_side)
    column = _invoice.c
    for value, clause in ((number, lambda v: column.number == v), (status, lambda v: column.status == v.value),
                          (verdict, lambda v: column.verdict == v),
                          (issued_from, lambda v: column.issue_date >= v),
                          (issued_to, lambda v: column.issue_date <= v),
                          (amount_min, lambda v: column.amount >= float(v)),
                          (amount_max, lambda v: column.amount <= float(v))):
        if value is not None:
            clauses.append(clause(value))
    return clauses


def _invoice_rows():
    """Invoices with their buyer's name in the directory (buyer_name)."""
    return select(_invoice, _structure.c.name.label("buyer_name")).outerjoin(_structure, _BUYER)


def invoices(app: App, viewer: Viewer, *, sort: str = "received", descending: bool = True, after: str | None = None,
             offset: int = 0, limit: int = 50, **search: Any) -> Page:
    """Search the viewer's invoices, newest first unless sort (a key of SORTS) says otherwise; after: the `next`
    of the previous page (newest first only), or offset: rows to skip. search: number, status (a Status),
    verdict, counterparty (the other party's SIRET, or part of its account's or directory name: the buyer or
    recipient of an invoice the viewer sent, the seller or supplier of one it received), issued_from and
    issued_to (YYYY-MM-DD), amount_min and amount_max (the total)."""
    column = SORTS[sort]
    newest = _invoice.c.id.desc() if descending else _invoice.c.id.asc()
    order = [newest] if sort == "received" else [(column.desc() if descending else column.asc()).nulls_last(), newest]
    query = (_invoice_rows().where(*_searched(viewer, **search)).order_by(*order)
             .offset(offset).limit(limit + 1))
    if after is not None:
        query = query.where(_invoice.c.id < after)
    with reading(app.engine) as connection:
        rows = list(connection.execute(query).all())
    return _page(rows, limit, _listed, lambda row: row.id)


def _listed(row: Row) -> dict:
    """An invoice of _invoice_rows() as a search lists it."""
    return invoice_dict(row, row.account, row.buyer_name)


def status_counts(app: App, viewer: Viewer, **search: Any) -> list[dict]:
    """How many of the viewer's invoices (searched as by invoices()) are in each status, by code; those
    rejected at integration (no status) under None."""
    query = (select(_invoice.c.status, func.count()).where(*_searched(viewer, **search))
             .group_by(_invoice.c.status))
    if search.get("counterparty") is not None:  # the only clause naming the buyer's structure
        query = query.outerjoin(_structure, _BUYER)
    with reading(app.engine) as connection:
        counted: dict[str | None, int] = {status: count for status, count in connection.execute(query)}
    return [{"status": code, "name": Status(code).name if code else None, "count": counted[code]}
            for code in sorted(counted, key=lambda code: code or "")]


ALERTING = (Status.REJETEE, Status.SUSPENDUE, Status.A_RECYCLER)


def alerts(app: App, viewer: Viewer, limit: int = 20, **search: Any) -> list[dict]:
    """The viewer's invoices that ask for action, newest first: rejected at integration (their errors say
    why), or REJETEE, SUSPENDUE or A_RECYCLER (their last status says why: `reason`)."""
    query = (_invoice_rows().where(*_searched(viewer, **search))
             .where(or_(_invoice.c.status.in_([s.value for s in ALERTING]), _invoice.c.verdict == Verdict.REJECTED))
             .order_by(_invoice.c.id.desc()).limit(limit))
    with reading(app.engine) as connection:
        rows = connection.execute(query).all()
        last = {h.invoice_id: h for h in connection.execute(select(_status).where(
            _status.c.invoice_id.in_([row.id for row in rows])).order_by(_status.c.id)).all()}
    found = []
    for row in rows:
        data, status = _listed(row), last.get(row.id)
        data["reason"] = _columns(status, _status, _STATUS_HIDDEN) if status else None
        found.append(data)
    return found


def delivered_file(app: App, viewer: Viewer, invoice_id: str, delivery_id: int) -> tuple[str, bytes]:
    """A file delivered about an invoice the viewer may see (the invoice to its recipient, a status-return
    to its supplier), one the viewer may see: (file name, content)."""
    with reading(app.engine) as connection:
        find_invoice(connection, viewer, invoice_id)
        column = _delivery.c
        found = connection.execute(select(_delivery).where(column.id == delivery_id, column.invoice_id == invoice_id,
                                                        column.kind.in_(["invoice", "status"]),
                                                        *_deliveries_seen(viewer))).first()
    if found is None or not app.store.exists(found.sha256):
        raise NotFound(f"no file {delivery_id} for invoice {invoice_id}")
    return found.file_name, app.store.get(found.sha256)


def deliveries(app: App, state: DeliveryState | None = None, limit: int = 50) -> list[dict]:
    """The most recent deliveries (an operator's view)."""
    query = select(_delivery).order_by(_delivery.c.id.desc()).limit(limit)
    if state:
        query = query.where(_delivery.c.state == state)
    with reading(app.engine) as connection:
        return [delivery_dict(d) for d in connection.execute(query).all()]


def structures(app: App, text: str, limit: int = 50) -> list[dict]:
    """The directory's structures whose SIRET begins with text or whose name holds it (any case), by name."""
    column = _structure.c
    query = (select(_structure).where(or_(column.siret.startswith(text, autoescape=True),
                                          column.name.icontains(text, autoescape=True)))
             .order_by(column.name, column.siret).limit(limit))
    with reading(app.engine) as connection:
        return [_columns(s, _structure) for s in connection.execute(query).all()]


def structure(app: App, siret: str, with_accounts: bool = True) -> dict:
    """A structure of the directory, its flags and its services (and, for an operator, the accounts holding
    its SIRET)."""
    with reading(app.engine) as connection:
        found = connection.execute(select(_structure).where(_structure.c.siret == siret)).first()
        if found is None:
            raise NotFound(f"no structure with SIRET {siret}")
        services = connection.execute(select(_service).where(_service.c.siret == siret)
                                   .order_by(_service.c.code)).all()
        sirets = tables.account_siret.c
        accounts = connection.scalars(select(sirets.account).where(sirets.siret == siret)).all()
    data = {**_columns(found, _structure), "services": [_columns(s, _service) for s in services]}
    if with_accounts:
        data["accounts"] = list(accounts)
    return data
