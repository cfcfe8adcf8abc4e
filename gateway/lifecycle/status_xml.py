"""The gateway's own status message (gateway/schemas/status.xsd): written to suppliers, read from recipients.

One root, statusUpdate, serves both ways, so a supplier's software and a recipient's share one
vocabulary: the gateway writes every element it knows; a recipient needs only the invoice id and the
status (code or name), with a reason code, comment and mandate number where the status calls for them.
"""

from __future__ import annotations

import threading

from lxml import etree

from gateway.lifecycle.notice import StatusMessageError, StatusNotice, StatusRequest
from gateway.lifecycle.statuses import Status
from gateway.returns.schemas import schema
from gateway.xmlwrite import xml_template

STATUS_NS = "urn:gateway:status:1"
ROOT_TAG = f"{{{STATUS_NS}}}statusUpdate"
SCHEMA = "status"

# lxml keeps a run's errors on the (cached, shared) schema object: a run and the reading of its errors
# must not interleave with another thread's. Status files are small, so the wait is short.
_validation = threading.Lock()

# A status (statusCode, statusName), or the platform's rejection at integration (rejectedByPlatform).
STATUS_UPDATE = xml_template("""\
<?xml version='1.0' encoding='UTF-8'?>
<statusUpdate xmlns="{{ namespace }}">
  <messageId>{{ notice.message_id }}</messageId>
  <invoiceId>{{ notice.invoice_id }}</invoiceId>
  {% if notice.invoice_number is not none %}
  <invoiceNumber>{{ notice.invoice_number }}</invoiceNumber>
  {% endif %}
  {% if notice.invoice_issue_date is not none %}
  <invoiceIssueDate>{{ notice.invoice_issue_date }}</invoiceIssueDate>
  {% endif %}
  {% if notice.status is none %}
  <rejectedByPlatform/>
  {% else %}
  <statusCode>{{ notice.status.value }}</statusCode>
  <statusName>{{ notice.status.name }}</statusName>
  {% endif %}
  <cdarCode>{{ notice.cdar_code }}</cdarCode>
  <at>{{ notice.at | xml_datetime }}</at>
  <actor>{{ notice.actor }}</actor>
  {% if notice.reason_code is not none %}
  <reasonCode>{{ notice.reason_code }}</reasonCode>
  {% endif %}
  {% if notice.reason is not none %}
  <comment>{{ notice.reason }}</comment>
  {% endif %}
  {% if notice.mandate_number is not none %}
  <mandateNumber>{{ notice.mandate_number }}</mandateNumber>
  {% endif %}
  <cdarLabel>{{ equivalent.cdar_label }}</cdarLabel>
  {% if equivalent.comment is not none %}
  <cdarComment>{{ equivalent.comment }}</cdarComment>
  {% endif %}
</statusUpdate>
""", namespace=STATUS_NS)


def build_status_xml(notice: StatusNotice) -> bytes:
    """The status message telling the supplier of notice, with both the Chorus and the reform code, the
    reform code's label and, where that code stands for several statuses (204), the comment naming this one."""
    return STATUS_UPDATE.render(notice=notice, equivalent=notice.equivalent).encode()


def parse_status_xml(document: etree._Element) -> StatusRequest:
    """The request a recipient's status message makes; raises StatusMessageError, with the schema's
    messages when it is not valid."""
    _validate(document)
    values = {etree.QName(element).localname: (element.text or "").strip() or None
              for element in document.iterchildren(etree.Element)}
    if "rejectedByPlatform" in values:
        raise StatusMessageError("rejectedByPlatform is written by the gateway only: "
                                 "a recipient sends a statusCode or a statusName")
    return StatusRequest(
        status=_status(values.get("statusCode"), values.get("statusName")),
        invoice_id=values["invoiceId"],
        invoice_number=values.get("invoiceNumber"),
        invoice_issue_date=values.get("invoiceIssueDate"),
        seller_siren=None,
        reason_code=values.get("reasonCode"),
        reason=values.get("comment"),
        mandate_number=values.get("mandateNumber"),
    )


def _validate(document: etree._Element) -> None:
    checker = schema(SCHEMA)
    with _validation:
        if checker.validate(document):
            return
        errors = "; ".join(f"line {entry.line}: {entry.message}" for entry in checker.error_log)
    raise StatusMessageError(f"Invalid status message (schemas/status.xsd): {errors}")


def _status(code: str | None, name: str | None) -> Status:
    """The status named by code, by name, or by both when they agree (the schema ensures one is there)."""
    by_code = Status(code) if code else None
    by_name = Status[name] if name else None
    if by_code and by_name and by_code is not by_name:
        raise StatusMessageError(f"statusCode {code} is {by_code.name}, not {name}")
    status = by_code or by_name
    assert status is not None  # the schema requires a statusCode or a statusName
    return status
