"""The integration report: what became of a flow in its final state (gateway/schemas/report.xsd)."""

from __future__ import annotations

import json
from datetime import datetime

from lxml import etree

from gateway.findings import Finding, loads
from gateway.models import FINAL_STATES, Flow, Invoice, Verdict
from gateway.returns.ack import append_receipt
from gateway.xmlwrite import child, optional_child, root, serialize, xml_datetime

REPORT_NS = "urn:gateway:report:1"


def build_report(flow: Flow, invoices: list[Invoice], processed_at: datetime) -> bytes:
    """The report of a flow in a final state; a flow still RECU has nothing to report yet."""
    if flow.state not in FINAL_STATES:
        raise ValueError(f"flow {flow.id} is {flow.state}, not in a final state")
    ordered = sorted(invoices, key=lambda invoice: invoice.seq)
    document = root(REPORT_NS, "report")
    _append_flow(child(document, "flow"), flow, processed_at)
    _append_counts(child(document, "counts"), ordered)
    _append_errors(child(document, "errors"), loads(flow.findings))
    container = child(document, "invoices")
    for invoice in ordered:
        _append_invoice(child(container, "invoice"), invoice)
    return serialize(document)


def _append_flow(parent: etree._Element, flow: Flow, processed_at: datetime) -> None:
    append_receipt(parent, flow)
    child(parent, "processedAt", xml_datetime(processed_at))
    child(parent, "state", flow.state)
    optional_child(parent, "syntax", flow.syntax)


def _append_counts(parent: etree._Element, invoices: list[Invoice]) -> None:
    accepted = sum(invoice.verdict == Verdict.ACCEPTED for invoice in invoices)
    child(parent, "invoices", len(invoices))
    child(parent, "accepted", accepted)
    child(parent, "rejected", len(invoices) - accepted)


def _append_invoice(parent: etree._Element, invoice: Invoice) -> None:
    child(parent, "invoiceId", invoice.id)
    child(parent, "seq", invoice.seq)
    child(parent, "name", invoice.name)
    optional_child(parent, "number", invoice.number)
    optional_child(parent, "issueDate", invoice.issue_date)
    optional_child(parent, "sellerSiret", invoice.seller_siret)
    optional_child(parent, "buyerSiret", invoice.buyer_siret)
    optional_child(parent, "recipient", invoice.recipient)
    child(parent, "verdict", invoice.verdict)
    _append_errors(child(parent, "errors"), loads(invoice.findings))
    packs = json.loads(invoice.packs or "[]")
    if packs:  # which rules judged it: the supplier and the operator can tell which release said so
        _append_packs(child(parent, "rulePacks"), packs)


def _append_packs(parent: etree._Element, packs: list[dict]) -> None:
    for pack in packs:
        element = child(parent, "pack")
        for key in ("name", "version", "sha256"):
            child(element, key, pack[key])


def _append_errors(parent: etree._Element, findings: list[Finding]) -> None:
    for finding in findings:
        error = child(parent, "error")
        child(error, "stage", finding.stage)
        child(error, "rule", finding.rule)
        child(error, "severity", finding.severity)
        child(error, "message", finding.message)
        optional_child(error, "line", finding.line)
        optional_child(error, "path", finding.path)
