"""The integration report: what became of a flow in its final state (gateway/schemas/report.xsd)."""

from __future__ import annotations

import json
from datetime import datetime

from gateway.data.findings import Finding, loads
from gateway.data.models import FINAL_STATES, Flow, Invoice, Verdict
from gateway.returns.ack import receipt
from gateway.xmlwrite import Part, Template, xml_datetime

REPORT_NS = "urn:gateway:report:1"

REPORT = Template("""
    <report xmlns="{namespace}">
      <flow>
        {receipt}
        <processedAt>{processed_at}</processedAt>
        <state>{state}</state>
        <syntax>{syntax?}</syntax>
      </flow>
      <counts>
        <invoices>{count}</invoices>
        <accepted>{accepted}</accepted>
        <rejected>{rejected}</rejected>
      </counts>
      <errors>
        {errors}
      </errors>
      <invoices>
        {invoices}
      </invoices>
    </report>
""", namespace=REPORT_NS)
INVOICE = Template("""
    <invoice>
      <invoiceId>{id}</invoiceId>
      <seq>{seq}</seq>
      <name>{name}</name>
      <number>{number?}</number>
      <issueDate>{issue_date?}</issueDate>
      <sellerSiret>{seller_siret?}</sellerSiret>
      <buyerSiret>{buyer_siret?}</buyerSiret>
      <recipient>{recipient?}</recipient>
      <verdict>{verdict}</verdict>
      <errors>
        {errors}
      </errors>
      {rule_packs?}
    </invoice>
""")
# Which rules judged an invoice: the supplier and the operator can tell which release said so.
RULE_PACKS = Template("""
    <rulePacks>
      {packs}
    </rulePacks>
""")
PACK = Template("""
    <pack>
      <name>{name}</name>
      <version>{version}</version>
      <sha256>{sha256}</sha256>
    </pack>
""")
ERROR = Template("""
    <error>
      <stage>{stage}</stage>
      <rule>{rule}</rule>
      <severity>{severity}</severity>
      <message>{message}</message>
      <line>{line?}</line>
      <path>{path?}</path>
    </error>
""")


def build_report(flow: Flow, invoices: list[Invoice], processed_at: datetime) -> bytes:
    """The report of a flow in a final state; a flow still RECU has nothing to report yet."""
    if flow.state not in FINAL_STATES:
        raise ValueError(f"flow {flow.id} is {flow.state}, not in a final state")
    ordered = sorted(invoices, key=lambda invoice: invoice.seq)
    accepted = sum(invoice.verdict == Verdict.ACCEPTED for invoice in ordered)
    return REPORT.document(
        receipt=receipt(flow), processed_at=xml_datetime(processed_at), state=flow.state, syntax=flow.syntax,
        count=len(ordered), accepted=accepted, rejected=len(ordered) - accepted,
        errors=_errors(loads(flow.findings)), invoices=[_invoice(invoice) for invoice in ordered],
    )


def _invoice(invoice: Invoice) -> Part:
    packs = json.loads(invoice.packs or "[]")
    return INVOICE.part(
        id=invoice.id, seq=invoice.seq, name=invoice.name, number=invoice.number, issue_date=invoice.issue_date,
        seller_siret=invoice.seller_siret, buyer_siret=invoice.buyer_siret, recipient=invoice.recipient,
        verdict=invoice.verdict, errors=_errors(loads(invoice.findings)),
        rule_packs=RULE_PACKS.part(packs=[PACK.part(**{key: pack[key] for key in ("name", "version", "sha256")})
                                          for pack in packs]) if packs else None,
    )


def _errors(findings: list[Finding]) -> list[Part]:
    return [ERROR.part(stage=finding.stage, rule=finding.rule, severity=finding.severity, message=finding.message,
                       line=finding.line, path=finding.path) for finding in findings]
