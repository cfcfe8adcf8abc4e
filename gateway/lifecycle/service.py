"""Changing an invoice's status: the one way every source goes (recipient files, the CLI, the gateway).

A change is checked against the transition table, recorded with its actor, time and reason, logged as
an event, and told to the supplier by a status-return file in the format its account reads; that file
travels as a delivery, so it is retried like an invoice and never lost. The subscriptions of the supplier
and of the recipient are notified too (gateway.notify), under the same rule (MISE_EN_PAIEMENT only where
it is reported). All of it happens in the caller's transaction: a change and its notifications commit
together or not at all.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Row, insert
from sqlmodel import Session, select

from gateway.app import App
from gateway.data import deferred, events, tables
from gateway.data.db import session_scope
from gateway.data.findings import Finding, loads
from gateway.data.models import (
    Flow,
    FlowState,
    Invoice,
    StatusFormat,
    Verdict,
    utcnow,
)
from gateway.data.views import by_reference
from gateway.engine import wakeups
from gateway.lifecycle.cdar import build_cdar
from gateway.lifecycle.invoice_response import build_invoice_response
from gateway.lifecycle.notice import StatusNotice, siren
from gateway.lifecycle.status_xml import build_status_xml
from gateway.lifecycle.statuses import (
    REASON_REQUIRED,
    TRANSITIONS,
    Status,
    can_move,
    requested,
)
from gateway.notify import outbox as notifications

__all__ = ["StatusRefused", "account_siren", "change_status", "delivered", "integrated",
           "notify_rejection", "queue_return", "rejection_reason", "set_status", "status_format"]


_FORMATS = {StatusFormat.CDAR: (build_cdar, ".cdar.xml"),
            StatusFormat.PEPPOL: (build_invoice_response, ".ir.xml"),
            StatusFormat.GATEWAY: (build_status_xml, ".status.xml")}


# The statement is built once: building an INSERT at each call would cost as much as the ORM it replaces.
_INSERT_STATUS = insert(tables.invoice_status).returning(*tables.invoice_status.c)


class StatusRefused(ValueError):
    """A status change that may not happen; the message is for whoever asked."""


def set_status(app: App, session: Session, invoice: Invoice, status: Status, actor: str, *,
               reason_code: str | None = None, reason: str | None = None, mandate_number: str | None = None,
               source: str | None = None) -> Row[Any]:
    """Move invoice to status, or raise StatusRefused saying why not.

    A_RECYCLER is withdrawn unless `[lifecycle] recycling`: asked for, it makes the invoice REJETEE with the
    reason given (the returned row says which status was set)."""
    change = _checked(app, _Change(invoice, status, actor, reason_code, reason, mandate_number, source))
    return _record(app, session, [change])[0]


class _Change(NamedTuple):
    """A status an invoice is moved to, by whom, why, and from which message (source)."""

    invoice: Invoice
    status: Status
    actor: str
    reason_code: str | None = None
    reason: str | None = None
    mandate_number: str | None = None
    source: str | None = None
    asked: Status | None = None  # what was asked for, where it differs (A_RECYCLER withdrawn)


def _checked(app: App, change: _Change) -> _Change:
    """The change that may be made of the one asked for, or StatusRefused saying why none may."""
    invoice, asked = change.invoice, change.status
    if invoice.status is None:
        raise StatusRefused(f"Invoice {invoice.id} was rejected at integration: it has no lifecycle.")
    current, status = Status(invoice.status), requested(asked, recycling=app.settings.lifecycle.recycling)
    withdrawn = f" (A_RECYCLER is withdrawn: it is {status.name})" if status is not asked else ""
    if not can_move(current, status):
        allowed = ", ".join(s.name for s in sorted(TRANSITIONS[current])) or "none: its life has ended"
        raise StatusRefused(f"Invoice {invoice.id} is {current.name}: it cannot become {status.name}{withdrawn} "
                            f"(allowed next: {allowed}).")
    if asked in REASON_REQUIRED and not (change.reason_code or change.reason):
        raise StatusRefused(f"Status {asked.name} needs a reason (reason code or text).")
    return change._replace(status=status, asked=asked if asked is not status else None)


def change_status(app: App, ref: str, status: Status, actor: str, *, recipient: str | None = None,
                  by_number: bool = False, reason_code: str | None = None, reason: str | None = None,
                  mandate_number: str | None = None, source: str | None = None) -> Row[Any]:
    """Set the status of invoice ref in a transaction of its own: what an operator (`gateway status set`) or a
    recipient (the API) asks. ref is the invoice's id or, if by_number, else the number of its latest live
    invoice; recipient: only an invoice delivered to that account is found (NotFound otherwise)."""
    query = select(Invoice)
    if recipient is not None:
        query = query.where(Invoice.recipient == recipient, Invoice.verdict == Verdict.ACCEPTED)
    with session_scope(app.engine) as session:
        invoice = by_reference(session, query, ref, by_number)
        return set_status(app, session, invoice, status, actor, reason_code=reason_code, reason=reason,
                          mandate_number=mandate_number, source=source)


def integrated(app: App, session: Session, invoices: list[Invoice]) -> None:
    """Invoices judged (gateway.judge.flow), their rows written: DEPOSEE for an accepted invoice (their status rows in
    one statement), COMPLETEE for the suspended invoice a document completes, and the platform's rejection (213)
    told to the supplier for a rejected one; in the order given."""
    deposits = {invoice.id: _Change(invoice, Status.DEPOSEE, "gateway", source=invoice.flow_id) for invoice in invoices
                if invoice.verdict is Verdict.ACCEPTED and not invoice.completes}
    rows = dict(zip(deposits, _insert(session, list(deposits.values())), strict=True))
    for invoice in invoices:
        if invoice.verdict is not Verdict.ACCEPTED:
            notify_rejection(app, session, invoice)
        elif invoice.completes:
            set_status(app, session, session.get_one(Invoice, invoice.completes), Status.COMPLETEE, "gateway",
                       source=invoice.flow_id)
        else:
            _told(app, session, deposits[invoice.id], rows[invoice.id])


# An invoice is made available by its first delivery (a completed one stays COMPLETEE).
_NOT_YET_AVAILABLE = frozenset({Status.DEPOSEE.value, Status.EN_COURS_ACHEMINEMENT.value})


def delivered(app: App, session: Session, invoices: list[tuple[Invoice, str]]) -> None:
    """Invoices whose files reached their recipients (gateway.route.delivery), each with the flow that brought it:
    MISE_A_DISPOSITION, for those not yet available (their status rows in one statement; an invoice given twice
    takes it once)."""
    available: dict[str, tuple[Invoice, str]] = {}
    for invoice, source in invoices:
        if invoice.status in _NOT_YET_AVAILABLE:
            available.setdefault(invoice.id, (invoice, source))
    _record(app, session, [_checked(app, _Change(invoice, Status.MISE_A_DISPOSITION, "gateway", source=source))
                           for invoice, source in available.values()])


def _record(app: App, session: Session, changes: list[_Change]) -> list[Row[Any]]:
    """The changes' status rows, then each told, in order (_insert, _told)."""
    rows = _insert(session, changes)
    for change, row in zip(changes, rows, strict=True):
        _told(app, session, change, row)
    return rows


def _insert(session: Session, changes: list[_Change]) -> list[Row[Any]]:
    """The changes' new status rows (invoicestatus, written in Core, one statement for them all), in order; each
    invoice moved to its status. An invoice changes once in a call: its rows come back in any order, found again
    by their invoices."""
    if len({change.invoice.id for change in changes}) != len(changes):
        raise ValueError("an invoice may change status once in a call")
    if not changes:
        return []
    with session.no_autoflush:  # the invoices' rows exist; the session's changes wait for its next query or commit
        rows = {row.invoice_id: row for row in session.execute(_INSERT_STATUS, [
            {"invoice_id": c.invoice.id, "status": c.status.value, "actor": c.actor, "reason_code": c.reason_code,
             "reason": c.reason, "mandate_number": c.mandate_number, "source": c.source} for c in changes])}
    for change in changes:
        change.invoice.status = change.status.value
        session.add(change.invoice)
    return [rows[change.invoice.id] for change in changes]


def _told(app: App, session: Session, change: _Change, row: Row[Any]) -> None:
    """A status change's event, and the status-return and notifications that tell it (row: its invoicestatus
    row)."""
    invoice, status = change.invoice, change.status
    asked_for = {"requested": change.asked.name} if change.asked is not None else {}
    events.record(session, invoice.flow_id, "status_changed", invoice_id=invoice.id, status=status.name,
                  code=status.value, actor=change.actor, reason_code=change.reason_code, source=change.source,
                  **asked_for)
    if _reported(app, session, invoice, status):
        _notify(app, session, invoice, _notice(app, session, invoice, row), f"status-{row.id}")
        notifications.invoice_status(app, session, invoice, row)
    else:
        events.record(session, invoice.flow_id, "status_not_reported", invoice_id=invoice.id, status=status.name)


def _reported(app: App, session: Session, invoice: Invoice, status: Status) -> bool:
    """MISE_EN_PAIEMENT is told to the supplier only where the structure's directory entry says so."""
    if status is not Status.MISE_EN_PAIEMENT:
        return True
    structure = app.reference.structure(session, invoice.buyer_siret) if invoice.buyer_siret else None
    return structure is None or structure.reports_payment


_REJ_BY_STAGE = {"admissibility": "REJ_SEMAN", "xsd": "REJ_SEMAN", "rules": "REJ_COH", "directory": "REJ_ADR",
                 "platform": "REJ_CONT_B2G"}


def rejection_reason(findings: list[Finding]) -> tuple[str, str]:
    """The reform's REJ_* reason code for an invoice the platform rejected, and a text naming its rules."""
    fatal = [f for f in findings if f.fatal] or findings
    code = "REJ_UNI" if any(f.rule == "B2G-DUPLICATE" for f in fatal) else _REJ_BY_STAGE.get(
        fatal[0].stage if fatal else "", "REJ_SEMAN")
    return code, "; ".join(f"{f.rule}: {f.message}" for f in fatal)[:500]


def notify_rejection(app: App, session: Session, invoice: Invoice) -> None:
    """Tell the supplier, in the reform's terms (213 Rejetée), that the platform rejected invoice."""
    code, text = rejection_reason(loads(invoice.findings))
    notice = _notice(app, session, invoice, None, reason_code=code, reason=text)
    _notify(app, session, invoice, notice, "rejected")


def _notice(app: App, session: Session, invoice: Invoice, row: Row[Any] | None,
            **rejection: str) -> StatusNotice:
    """What the supplier is told; row None means the platform's rejection at integration."""
    supplier = session.get_one(Flow, invoice.flow_id).account
    return StatusNotice(
        message_id=f"{invoice.id}-{row.id if row else 'rejected'}",
        status=Status(row.status) if row else None,
        at=row.at if row else utcnow(),
        invoice_id=invoice.id, invoice_number=invoice.number, invoice_issue_date=invoice.issue_date,
        invoice_type_code=invoice.type_code, seller_siret=invoice.seller_siret, buyer_siret=invoice.buyer_siret,
        actor=row.actor if row else "gateway",
        reason_code=row.reason_code if row else rejection["reason_code"],
        reason=row.reason if row else rejection["reason"],
        mandate_number=row.mandate_number if row else None,
        platform_siren=app.settings.gateway.platform_siren, platform_matricule=app.settings.gateway.platform_matricule,
        supplier=supplier, supplier_siren=account_siren(app, session, supplier),
    )


def account_siren(app: App, session: Session, account: str) -> str | None:
    """The SIREN of the account's first SIRET: how the reform addresses it; None if it holds none."""
    return siren(next(iter(app.reference.sirets(session, account)), None))


def _notify(app: App, session: Session, invoice: Invoice, notice: StatusNotice, tag: str) -> None:
    """Queue the status-return file for the supplier, in its account's format."""
    flow = session.get_one(Flow, invoice.flow_id)
    build, suffix = _FORMATS[status_format(app, session, flow.account)]
    queue_return(app, session, flow, f"{invoice.id}.{tag}{suffix}", build(notice), invoice_id=invoice.id)


def status_format(app: App, session: Session, account: str) -> StatusFormat:
    """The format of the status-returns account reads (CDAR for an account unknown here)."""
    found = app.reference.account(session, account)
    return found.status_format if found else StatusFormat.CDAR


def queue_return(app: App, session: Session, flow: Flow, file_name: str, content: bytes,
                 invoice_id: str | None = None) -> None:
    """Queue a status-return file for the account of flow (about one of its invoices, or about the flow itself):
    a delivery, retried like an invoice, written with the transaction's others when it commits
    (gateway.data.deferred); the delivery workers are woken unless the flow is still being processed, whose
    worker makes its deliveries itself."""
    deferred.add(session, tables.delivery, {"kind": "status", "invoice_id": invoice_id, "flow_id": flow.id,
                                            "destination": flow.account, "file_name": file_name,
                                            "sha256": app.store.put(content)})
    if flow.state is not FlowState.RECU:
        wakeups.at_commit(app, session)
