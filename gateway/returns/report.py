"""The integration report: what became of a flow in its final state (gateway/schemas/report.xsd)."""

from __future__ import annotations

import json
from datetime import datetime

from gateway.data.findings import loads
from gateway.data.models import FINAL_STATES, Flow, Invoice, Verdict
from gateway.returns.ack import RECEIPT
from gateway.xmlwrite import xml_template

REPORT_NS = "urn:gateway:report:1"

# An invoice's rulePacks say which rules judged it: the supplier and the operator can tell which release said so.
REPORT = xml_template("""\
{% macro errors(findings) %}
<errors>
  {% for finding in findings %}
  <error>
    <stage>{{ finding.stage }}</stage>
    <rule>{{ finding.rule }}</rule>
    <severity>{{ finding.severity }}</severity>
    <message>{{ finding.message }}</message>
    {% if finding.line is not none %}
    <line>{{ finding.line }}</line>
    {% endif %}
    {% if finding.path is not none %}
    <path>{{ finding.path }}</path>
    {% endif %}
  </error>
  {% endfor %}
</errors>
{%- endmacro %}
<?xml version='1.0' encoding='UTF-8'?>
<report xmlns="{{ namespace }}">
  <flow>
{% include receipt %}
    <processedAt>{{ processed_at | xml_datetime }}</processedAt>
    <state>{{ flow.state }}</state>
    {% if flow.syntax is not none %}
    <syntax>{{ flow.syntax }}</syntax>
    {% endif %}
  </flow>
  <counts>
    <invoices>{{ invoices | length }}</invoices>
    <accepted>{{ accepted }}</accepted>
    <rejected>{{ invoices | length - accepted }}</rejected>
  </counts>
  {{ errors(findings) | nested(2) }}
  <invoices>
    {% for invoice, findings, packs in invoices %}
    <invoice>
      <invoiceId>{{ invoice.id }}</invoiceId>
      <seq>{{ invoice.seq }}</seq>
      <name>{{ invoice.name }}</name>
      {% if invoice.number is not none %}
      <number>{{ invoice.number }}</number>
      {% endif %}
      {% if invoice.issue_date is not none %}
      <issueDate>{{ invoice.issue_date }}</issueDate>
      {% endif %}
      {% if invoice.seller_siret is not none %}
      <sellerSiret>{{ invoice.seller_siret }}</sellerSiret>
      {% endif %}
      {% if invoice.buyer_siret is not none %}
      <buyerSiret>{{ invoice.buyer_siret }}</buyerSiret>
      {% endif %}
      {% if invoice.recipient is not none %}
      <recipient>{{ invoice.recipient }}</recipient>
      {% endif %}
      <verdict>{{ invoice.verdict }}</verdict>
      {{ errors(findings) | nested(6) }}
      {% if packs %}
      <rulePacks>
        {% for pack in packs %}
        <pack>
          <name>{{ pack.name }}</name>
          <version>{{ pack.version }}</version>
          <sha256>{{ pack.sha256 }}</sha256>
        </pack>
        {% endfor %}
      </rulePacks>
      {% endif %}
    </invoice>
    {% endfor %}
  </invoices>
</report>
""", namespace=REPORT_NS, receipt=RECEIPT)


def build_report(flow: Flow, invoices: list[Invoice], processed_at: datetime) -> bytes:
    """The report of a flow in a final state; a flow still RECU has nothing to report yet."""
    if flow.state not in FINAL_STATES:
        raise ValueError(f"flow {flow.id} is {flow.state}, not in a final state")
    ordered = sorted(invoices, key=lambda invoice: invoice.seq)
    return REPORT.render(
        flow=flow, processed_at=processed_at, findings=loads(flow.findings),
        accepted=sum(invoice.verdict == Verdict.ACCEPTED for invoice in ordered),
        invoices=[(invoice, loads(invoice.findings), json.loads(invoice.packs or "[]")) for invoice in ordered],
    ).encode()
