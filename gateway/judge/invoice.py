"""The verdict of one invoice, recorded in the worker's transaction: its document's checks and business rules,
then, if it passed them, the platform controls (gateway.judge.controls) and the routing decision
(gateway.judge.routing), which read what the database holds (earlier invoices, accounts, the directory).
"""

from __future__ import annotations

import json
from dataclasses import fields as dataclass_fields
from datetime import UTC, date
from zoneinfo import ZoneInfo

from sqlmodel import Session
from stdnum.fr import siret as siret_number

from gateway.app import App
from gateway.data import events, tables
from gateway.data.findings import any_fatal, dumps
from gateway.data.models import Flow, Invoice, Verdict
from gateway.judge.controls import Deposit, DuplicateKey, Ledger, check_deposit, duplicate_key
from gateway.judge.routing import route
from gateway.validate import Checked
from gateway.validate.extract import InvoiceData
from gateway.validate.rules import RulesVerdict

__all__ = ["deposit_day", "judge_invoice"]


def deposit_day(app: App, flow: Flow) -> date:
    """The day of deposit where the platform runs (an invoice dated today, Paris time, is not future)."""
    received = flow.received_at if flow.received_at.tzinfo else flow.received_at.replace(tzinfo=UTC)
    return received.astimezone(ZoneInfo(app.settings.gateway.timezone)).date()


def judge_invoice(app: App, session: Session, flow: Flow, seq: int, name: str, sha256: str, checked: Checked,
                  rules: RulesVerdict | None, day: date, accepted_keys: set[DuplicateKey], ledger: Ledger) -> Invoice:
    """Record one invoice's verdict: its checks, then routing and platform controls if it passed them.

    accepted_keys holds the duplicate keys of the invoices accepted earlier in the same flow, ledger the earlier
    invoices (of the batch too: an accepted invoice is added to it).
    """
    data = checked.data
    invoice = Invoice(id=f"{flow.id}-{seq:03d}", flow_id=flow.id, account=flow.account, seq=seq, name=name,
                      sha256=sha256, verdict=Verdict.REJECTED, **(_data_fields(data) if data else {}))
    findings = list(checked.findings)
    events.record(session, flow.id, "xsd_checked", invoice_id=invoice.id, syntax=checked.syntax,
                  valid=checked.valid, rules=sorted({f.rule for f in findings}))
    if rules is not None:  # the business rules: only their fatal findings reject, warnings are reported
        findings += rules.findings
        invoice.packs = json.dumps([vars(pack) for pack in rules.packs])
        events.record(session, flow.id, "rules_checked", invoice_id=invoice.id, valid=rules.valid,
                      **rules.describe())
    if rules is not None and rules.valid and data is not None:
        deposit = Deposit(session, data, flow.account, day, accepted_keys, app.reference, ledger)
        controls = check_deposit(deposit)
        decision = route(session, data, reference=app.reference)
        findings += controls + decision.findings
        invoice.recipient = decision.recipient
        events.record(session, flow.id, "controls_checked", invoice_id=invoice.id,
                      rules=[f.rule for f in controls])
        events.record(session, flow.id, "routed" if decision.accepted else "route_refused",
                      invoice_id=invoice.id, buyer_siret=data.buyer_siret, recipient=decision.recipient,
                      rules=[f.rule for f in decision.findings])
        if not any_fatal(findings) and invoice.recipient:
            invoice.verdict = Verdict.ACCEPTED
            invoice.completes = deposit.completes.id if deposit.completes else None
            accepted_keys.add(duplicate_key(data))
            ledger.accepted(invoice, deposit.completes)
    invoice.findings = dumps(findings)
    session.add(invoice)
    events.record(session, flow.id, f"invoice_{invoice.verdict.value}", invoice_id=invoice.id,
                  number=invoice.number, rules=[f.rule for f in findings if f.fatal])
    return invoice


# What an invoice row keeps of the extracted data: the invoice table's columns that InvoiceData has (its fields,
# and the amount it reads from the total), so that a field is declared in the table and in the extraction only.
_KEPT = [column.key for column in tables.invoice.columns
         if column.key in {item.name for item in dataclass_fields(InvoiceData)} or column.key == "amount"]


def _data_fields(data: InvoiceData) -> dict:
    kept = {key: getattr(data, key) for key in _KEPT}
    for key in ("seller_siret", "buyer_siret"):  # kept compact: the duplicate key compares them
        kept[key] = siret_number.compact(kept[key] or "") or None
    return kept
