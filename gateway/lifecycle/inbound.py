"""Status messages from recipients: a CDAR file or the gateway's own status XML, dropped like any flow.

The intake is the one every flow goes through; the document's root decides that it is a status message
and not an invoice. Each request in it names an invoice, which must be addressed to the account that sent
the message; the status is then set through the lifecycle service. What became of each request is kept
on the flow, so that a flow taken again after a crash reports the same outcomes without setting twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from lxml import etree
from sqlmodel import Session, select

from gateway.app import App
from gateway.data.findings import Finding
from gateway.data.models import Flow, Invoice, Verdict
from gateway.lifecycle.cdar import parse_cdar
from gateway.lifecycle.notice import StatusRequest
from gateway.lifecycle.service import StatusRefused, set_status
from gateway.lifecycle.status_xml import parse_status_xml

STAGE = "lifecycle"
CDAR_ROOT = "{urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100}" \
            "CrossDomainAcknowledgementAndResponse"
CDAR = "cdar"
_PARSERS: dict[str, tuple[str, Callable[[etree._Element], list[StatusRequest]]]] = {
    CDAR_ROOT: (CDAR, parse_cdar),
    "{urn:gateway:status:1}statusUpdate": ("gateway-status", lambda root: [parse_status_xml(root)]),
}


def status_syntax(root_tag: str | None) -> str | None:
    """cdar or gateway-status when a document with this root is a status message, else None."""
    entry = _PARSERS.get(root_tag or "")
    return entry[0] if entry else None


def requests_of(root: etree._Element) -> list[StatusRequest]:
    """The requests a status message carries; raises StatusMessageError when it cannot be read."""
    return _PARSERS[root.tag][1](root)


@dataclass
class Outcome:
    """One request and what became of it, shaped like a report's invoice entry."""

    seq: int
    invoice_id: str | None
    number: str | None
    issue_date: str | None
    seller_siret: str | None
    verdict: str
    findings: list[dict] = field(default_factory=list)

    def as_invoice(self, flow_id: str) -> Invoice:
        """A transient invoice row, for the integration report the recipient receives."""
        return Invoice(id=self.invoice_id or f"{flow_id}-{self.seq:03d}", flow_id=flow_id, seq=self.seq,
                       number=self.number, issue_date=self.issue_date, seller_siret=self.seller_siret,
                       verdict=Verdict(self.verdict), findings=_dumps(self.findings))


def _dumps(items: list[dict]) -> str:
    return json.dumps(items, ensure_ascii=False)


def apply(app: App, session: Session, flow: Flow, requests: list[StatusRequest]) -> list[Outcome]:
    """Set each requested status; a refused request is reported, the others still apply."""
    return [_apply_one(app, session, flow, seq, request) for seq, request in enumerate(requests, start=1)]


def _apply_one(app: App, session: Session, flow: Flow, seq: int, request: StatusRequest) -> Outcome:
    invoice = _find(session, flow.account, request)
    outcome = Outcome(seq, invoice.id if invoice else request.invoice_id, request.invoice_number,
                      request.invoice_issue_date, invoice.seller_siret if invoice else request.seller_siren,
                      Verdict.REJECTED.value)
    if invoice is None:
        outcome.findings.append(_finding("STATUS-INVOICE-UNKNOWN", _unknown(request)))
        return outcome
    outcome.number, outcome.issue_date = invoice.number, invoice.issue_date
    try:
        set_status(app, session, invoice, request.status, flow.account, reason_code=request.reason_code,
                   reason=request.reason, mandate_number=request.mandate_number, source=flow.id)
    except StatusRefused as refused:
        outcome.findings.append(_finding("STATUS-REFUSED", str(refused)))
        return outcome
    outcome.verdict = Verdict.ACCEPTED.value
    return outcome


def _find(session: Session, account: str, request: StatusRequest) -> Invoice | None:
    """The live invoice addressed to account that the request names (by id, or by number and seller)."""
    query = select(Invoice).where(Invoice.recipient == account, Invoice.status.is_not(None))
    if request.invoice_id:
        query = query.where(Invoice.id == request.invoice_id)
    elif request.invoice_number:
        query = query.where(Invoice.number == request.invoice_number)
        if request.seller_siren:
            query = query.where(Invoice.seller_siret.startswith(request.seller_siren[:9]))
        if request.invoice_issue_date:
            query = query.where(Invoice.issue_date == request.invoice_issue_date)
    else:
        return None
    return session.exec(query.order_by(Invoice.id.desc()).limit(1)).first()


def _unknown(request: StatusRequest) -> str:
    named = request.invoice_id or f"number {request.invoice_number!r}" + (
        f" of seller {request.seller_siren}" if request.seller_siren else "")
    return f"No invoice {named} addressed to you is known: its status cannot be set."


def _finding(rule: str, message: str) -> dict:
    return Finding(stage=STAGE, rule=rule, message=message).to_dict()


def outcomes_json(outcomes: list[Outcome]) -> str:
    return _dumps([asdict(o) for o in outcomes])


def outcomes_from(text: str) -> list[Outcome]:
    return [Outcome(**o) for o in json.loads(text or "[]")]
