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
from gateway.xmlwrite import Template, xml_datetime

STATUS_NS = "urn:gateway:status:1"
ROOT_TAG = f"{{{STATUS_NS}}}statusUpdate"
SCHEMA = "status"

# lxml keeps a run's errors on the (cached, shared) schema object: a run and the reading of its errors
# must not interleave with another thread's. Status files are small, so the wait is short.
_validation = threading.Lock()

# A status (statusCode, statusName), or the platform's rejection at integration (rejectedByPlatform).
STATUS_UPDATE = Template("""
    <statusUpdate xmlns="{namespace}">
      <messageId>{message_id}</messageId>
      <invoiceId>{invoice_id}</invoiceId>
      <invoiceNumber>{invoice_number?}</invoiceNumber>
      <invoiceIssueDate>{invoice_issue_date?}</invoiceIssueDate>
      {rejected?}
      <statusCode>{status_code?}</statusCode>
      <statusName>{status_name?}</statusName>
      <cdarCode>{cdar_code}</cdarCode>
      <at>{at}</at>
      <actor>{actor}</actor>
      <reasonCode>{reason_code?}</reasonCode>
      <comment>{comment?}</comment>
      <mandateNumber>{mandate_number?}</mandateNumber>
      <cdarLabel>{cdar_label}</cdarLabel>
      <cdarComment>{cdar_comment?}</cdarComment>
    </statusUpdate>
""", namespace=STATUS_NS)
REJECTED_BY_PLATFORM = Template("<rejectedByPlatform/>")


def build_status_xml(notice: StatusNotice) -> bytes:
    """The status message telling the supplier of notice, with both the Chorus and the reform code, the
    reform code's label and, where that code stands for several statuses (204), the comment naming this one."""
    status = notice.status
    return STATUS_UPDATE.document(
        message_id=notice.message_id, invoice_id=notice.invoice_id, invoice_number=notice.invoice_number,
        invoice_issue_date=notice.invoice_issue_date,
        rejected=REJECTED_BY_PLATFORM.part() if status is None else None,
        status_code=None if status is None else status.value, status_name=None if status is None else status.name,
        cdar_code=notice.cdar_code, at=xml_datetime(notice.at), actor=notice.actor, reason_code=notice.reason_code,
        comment=notice.reason, mandate_number=notice.mandate_number, cdar_label=notice.equivalent.cdar_label,
        cdar_comment=notice.equivalent.comment,
    )


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
