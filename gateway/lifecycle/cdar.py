"""The reform's lifecycle message (CDAR, "Flux 6"): written to suppliers, read from recipients.

UN/CEFACT CrossDomainAcknowledgementAndResponse D22B as the AFNOR XP Z12-012 layout uses it, in the element
order of the D22B sequences: context (business process, then guideline); exchanged document (ID, Name,
IssueDateTime, sender, issuer, recipient parties); acknowledgement (MultipleReferencesIndicator, TypeCode,
IssueDateTime, ReferenceReferencedDocument); referenced document (IssuerAssignedID, TypeCode, Name,
ReceiptDateTime, FormattedIssueDateTime, ProcessConditionCode, ProcessCondition, IssuerTradeParty,
SpecifiedDocumentStatus); status detail (ReasonCode, Reason, ProcessConditionCode, SequenceNumeric,
IncludedNote); party (GlobalID, RoleCode, URIUniversalCommunication). Every message written passes the
official CDAR D22B XSD and the fatal BR-FR-CDV rules (FNFE-MPE 1.4.0.01; tests/test_cdar_conformance.py
drives every status and reason through them).

The gateway's choices where the format leaves room:
- every party is named by SIREN (scheme 0002), the platform too (role WK; seller SE, buyer BY); the
  sender, the platform, also by its registration number (scheme 0238, `[gateway] platform_matricule`), as
  BR-FR-CDV-CL-09 wants of a 210; the recipient, the supplier, also by its electronic address
  (BR-FR-CDV-08): its SIREN as the reform's SIREN-based address (scheme 0225), or, for an account holding
  no SIRET, its account name;
- TypeCode 305 for a status the platform issued while carrying the invoice, 23 for a party's own;
- an invoice read without its issue date is dated the day of the message (BR-FR-CDV-11 wants a date), and
  its type code is left out unless the reform's list has it (BR-FR-04);
- the reason code is one BR-FR-CDV allows with the status (gateway.lifecycle.cdar_reasons);
- the mandate number of MANDATEE travels as an IncludedNote of subject PMT (UNTDID 4451, payment
  information): the format has no field of its own for it;
- a code several statuses share (204 Prise en charge: service fait, mandatée, mise à disposition du
  comptable, comptabilisée) comes with a comment naming the precise status, an IncludedNote of the status
  detail without a subject code, before the mandate's;
- the flow's lifecycle (500 Recevable, 501 Irrecevable) references the flow: its id as the acknowledgement
  gives it, its file name, and when it was received; a 501 has one status detail per reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import NamedTuple

from lxml import etree

from gateway.lifecycle.cdar_reasons import told_reason
from gateway.lifecycle.notice import (
    FLOW_LABELS,
    REASON_REQUIRED_CODES,
    FlowNotice,
    StatusMessageError,
    StatusNotice,
    StatusRequest,
)
from gateway.lifecycle.statuses import Status, from_cdar
from gateway.xmlwrite import utc, xml_template

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
ROOT_TAG = f"{{{NS['rsm']}}}CrossDomainAcknowledgementAndResponse"
GUIDELINE = "urn.cpro.gouv.fr:1p0:CDV:invoice"
BUSINESS_PROCESS = "REGULATED"
MESSAGE_NAME = "Statut de cycle de vie"
SIREN_SCHEME, ADDRESS_SCHEME, PLATFORM_SCHEME = "0002", "0225", "0238"
PLATFORM_ROLE, SELLER_ROLE, BUYER_ROLE = "WK", "SE", "BY"
PLATFORM_STATUS_TYPE, PARTY_STATUS_TYPE = "305", "23"
SELLER_CODES = frozenset({"209"})  # Complétée: the seller's act (it sent what was missing)
MANDATE_SUBJECT = "PMT"
# The invoice types both BR-FR-04 and the D22B code list (UNTDID 1001 D22A) accept.
REFERENCED_TYPES = frozenset({"380", "389", "393", "386", "384", "261", "262", "381", "396"})
# What a recipient may send: the codes from_cdar turns into a status.
RECIPIENT_CODES = tuple(code for code in map(str, range(200, 214)) if from_cdar(code, None) is not None)

_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{6})?")  # format 102 (yyyymmdd) or 204 (yyyymmddhhmmss)
_SIREN_OR_SIRET = re.compile(r"\d{9}(\d{5})?")

_CODES = dict(business_process=BUSINESS_PROCESS, guideline=GUIDELINE, message_name=MESSAGE_NAME,
              siren_scheme=SIREN_SCHEME, address_scheme=ADDRESS_SCHEME, platform_scheme=PLATFORM_SCHEME,
              platform_role=PLATFORM_ROLE, seller_role=SELLER_ROLE)
# One referenced document: an invoice (its type code) or a flow (its name and when it was received). The recipient
# is addressed by its SIREN or, without one, by its account's name.
MESSAGE = xml_template("""\
<?xml version='1.0' encoding='UTF-8'?>
<rsm:CrossDomainAcknowledgementAndResponse xmlns:rsm="{{ rsm }}" xmlns:ram="{{ ram }}" xmlns:udt="{{ udt }}" \
xmlns:qdt="{{ qdt }}">
  <rsm:ExchangedDocumentContext>
    <ram:BusinessProcessSpecifiedDocumentContextParameter>
      <ram:ID>{{ business_process }}</ram:ID>
    </ram:BusinessProcessSpecifiedDocumentContextParameter>
    <ram:GuidelineSpecifiedDocumentContextParameter>
      <ram:ID>{{ guideline }}</ram:ID>
    </ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>{{ message_id }}</ram:ID>
    <ram:Name>{{ message_name }}</ram:Name>
    <ram:IssueDateTime>
      <udt:DateTimeString format="204">{{ at }}</udt:DateTimeString>
    </ram:IssueDateTime>
    <ram:SenderTradeParty>
      {% if platform_matricule is not none %}
      <ram:GlobalID schemeID="{{ platform_scheme }}">{{ platform_matricule }}</ram:GlobalID>
      {% endif %}
      <ram:GlobalID schemeID="{{ siren_scheme }}">{{ platform_siren }}</ram:GlobalID>
      <ram:RoleCode>{{ platform_role }}</ram:RoleCode>
    </ram:SenderTradeParty>
    <ram:IssuerTradeParty>
      <ram:GlobalID schemeID="{{ siren_scheme }}">{{ issuer_siren }}</ram:GlobalID>
      <ram:RoleCode>{{ issuer_role }}</ram:RoleCode>
    </ram:IssuerTradeParty>
    <ram:RecipientTradeParty>
      {% if recipient_siren %}
      <ram:GlobalID schemeID="{{ siren_scheme }}">{{ recipient_siren }}</ram:GlobalID>
      {% endif %}
      <ram:RoleCode>{{ seller_role }}</ram:RoleCode>
      <ram:URIUniversalCommunication>
        {% if recipient_siren %}
        <ram:URIID schemeID="{{ address_scheme }}">{{ recipient_siren }}</ram:URIID>
        {% else %}
        <ram:URIID>{{ recipient_account }}</ram:URIID>
        {% endif %}
      </ram:URIUniversalCommunication>
    </ram:RecipientTradeParty>
  </rsm:ExchangedDocument>
  <rsm:AcknowledgementDocument>
    <ram:MultipleReferencesIndicator>
      <udt:Indicator>false</udt:Indicator>
    </ram:MultipleReferencesIndicator>
    <ram:TypeCode>{{ type_code }}</ram:TypeCode>
    <ram:IssueDateTime>
      <udt:DateTimeString format="204">{{ at }}</udt:DateTimeString>
    </ram:IssueDateTime>
    <ram:ReferenceReferencedDocument>
      <ram:IssuerAssignedID>{{ reference }}</ram:IssuerAssignedID>
      {% if reference_type is not none %}
      <ram:TypeCode>{{ reference_type }}</ram:TypeCode>
      {% endif %}
      {% if reference_name is not none %}
      <ram:Name>{{ reference_name }}</ram:Name>
      {% endif %}
      {% if received is not none %}
      <ram:ReceiptDateTime>
        <udt:DateTimeString format="204">{{ received }}</udt:DateTimeString>
      </ram:ReceiptDateTime>
      {% endif %}
      <ram:FormattedIssueDateTime>
        <qdt:DateTimeString format="102">{{ issued }}</qdt:DateTimeString>
      </ram:FormattedIssueDateTime>
      <ram:ProcessConditionCode>{{ code }}</ram:ProcessConditionCode>
      <ram:ProcessCondition>{{ label }}</ram:ProcessCondition>
      {% if seller_siren %}
      <ram:IssuerTradeParty>
        <ram:GlobalID schemeID="{{ siren_scheme }}">{{ seller_siren }}</ram:GlobalID>
        <ram:RoleCode>{{ seller_role }}</ram:RoleCode>
      </ram:IssuerTradeParty>
      {% endif %}
      {% for detail in details %}
      <ram:SpecifiedDocumentStatus>
        {% if detail.reason_code is not none %}
        <ram:ReasonCode>{{ detail.reason_code }}</ram:ReasonCode>
        {% endif %}
        {% if detail.reason is not none %}
        <ram:Reason>{{ detail.reason }}</ram:Reason>
        {% endif %}
        <ram:ProcessConditionCode>{{ code }}</ram:ProcessConditionCode>
        <ram:SequenceNumeric>{{ loop.index }}</ram:SequenceNumeric>
        {% for content, subject in detail.notes %}
        <ram:IncludedNote>
          <ram:Content>{{ content }}</ram:Content>
          {% if subject is not none %}
          <ram:SubjectCode>{{ subject }}</ram:SubjectCode>
          {% endif %}
        </ram:IncludedNote>
        {% endfor %}
      </ram:SpecifiedDocumentStatus>
      {% endfor %}
    </ram:ReferenceReferencedDocument>
  </rsm:AcknowledgementDocument>
</rsm:CrossDomainAcknowledgementAndResponse>
""", **NS, **_CODES)


class StatusDetail(NamedTuple):
    """A status detail of the referenced document: the reason as the reform allows it with its code, then notes
    (content, subject code or None)."""

    reason_code: str | None
    reason: str | None
    notes: Sequence[tuple[str, str | None]] = ()


def build_cdar(notice: StatusNotice) -> bytes:
    """The CDAR message telling the supplier of notice: the platform sends it, the seller receives it."""
    equivalent = notice.equivalent
    issued = date.fromisoformat(notice.invoice_issue_date) if notice.invoice_issue_date else utc(notice.at).date()
    return _message(
        notice.message_id, notice.at, notice.platform_siren, notice.platform_matricule, _issuer(notice),
        notice.seller_siren or notice.supplier_siren, notice.supplier, notice.issued_by_platform,
        reference=notice.invoice_reference, reference_name=None, received=None,
        reference_type=notice.invoice_type_code if notice.invoice_type_code in REFERENCED_TYPES else None,
        issued=_day(issued), code=equivalent.cdar, label=equivalent.cdar_label, seller_siren=notice.seller_siren,
        details=_document_status(notice),
    )


def build_flow_cdar(notice: FlowNotice) -> bytes:
    """The flow's lifecycle told to the account that deposited it: the platform issues it (305)."""
    code = notice.cdar_code
    return _message(
        notice.message_id, notice.at, notice.platform_siren, notice.platform_matricule,
        (notice.platform_siren, PLATFORM_ROLE), notice.supplier_siren, notice.supplier, True,
        reference=notice.flow_id, reference_type=None, reference_name=notice.original_name,
        received=_timestamp(notice.received_at), issued=_day(utc(notice.received_at).date()),
        code=code, label=FLOW_LABELS[code], seller_siren=notice.supplier_siren,
        details=[_status_detail(code, reason_code, reason) for reason_code, reason in notice.reasons],
    )


def _message(message_id: str, at: datetime, platform_siren: str, platform_matricule: str | None,
             issuer: tuple[str, str], recipient_siren: str | None, recipient_account: str | None,
             issued_by_platform: bool, **reference: object) -> bytes:
    """The message about one referenced document: the platform sends it (by its registration number and its
    SIREN), issuer issued the status, the supplier receives it."""
    return MESSAGE.render(
        message_id=message_id, at=_timestamp(at), platform_matricule=platform_matricule, platform_siren=platform_siren,
        issuer_siren=issuer[0], issuer_role=issuer[1], recipient_siren=recipient_siren,
        recipient_account=recipient_account,
        type_code=PLATFORM_STATUS_TYPE if issued_by_platform else PARTY_STATUS_TYPE, **reference,
    ).encode()


def _timestamp(moment: datetime) -> str:
    """Format 204 (yyyymmddhhmmss), in UTC."""
    return utc(moment).strftime("%Y%m%d%H%M%S")


def _day(day: date) -> str:
    """Format 102 (yyyymmdd)."""
    return day.strftime("%Y%m%d")


def _issuer(notice: StatusNotice) -> tuple[str, str]:
    """Who issued the status: the platform while carrying the invoice, else the party whose act it is;
    the platform stands in for a party the invoice did not name (a SIRET the extraction could not read)."""
    if notice.issued_by_platform:
        return notice.platform_siren, PLATFORM_ROLE
    if notice.cdar_code in SELLER_CODES:
        siren, role = notice.seller_siren, SELLER_ROLE
    else:
        siren, role = notice.buyer_siren, BUYER_ROLE
    return (siren, role) if siren else (notice.platform_siren, PLATFORM_ROLE)


def _document_status(notice: StatusNotice) -> list[StatusDetail]:
    """The reason, the comment naming the precise status and the mandate; a status that has none needs none."""
    comment = notice.equivalent.comment
    if not (notice.reason_code or notice.reason or notice.mandate_number or comment):
        return []
    notes = [(content, subject) for content, subject in ((comment, None), (notice.mandate_number, MANDATE_SUBJECT))
             if content]
    return [_status_detail(notice.cdar_code, notice.reason_code, notice.reason, notes)]


def _status_detail(code: str, reason_code: str | None, reason: str | None,
                   notes: Sequence[tuple[str, str | None]] = ()) -> StatusDetail:
    """One status detail: the reason as the reform allows it with code, then any notes."""
    return StatusDetail(*told_reason(code, reason_code, reason), notes)


def parse_cdar(root: etree._Element) -> list[StatusRequest]:
    """One request per invoice the message references; raises StatusMessageError for one it cannot act on."""
    if root.tag != ROOT_TAG:
        raise StatusMessageError(f"Not a CDAR message: root element {root.tag}")
    references = root.findall("rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument", NS)
    if not references:
        raise StatusMessageError("The CDAR message references no invoice (no ReferenceReferencedDocument)")
    return [_request(reference) for reference in references]


def _request(reference: etree._Element) -> StatusRequest:
    number = _text(reference, "ram:IssuerAssignedID")
    if number is None:
        raise StatusMessageError("A ReferenceReferencedDocument has no IssuerAssignedID (the invoice number)")
    reason_code = _text(reference, "ram:SpecifiedDocumentStatus/ram:ReasonCode")
    reason = _text(reference, "ram:SpecifiedDocumentStatus/ram:Reason")
    return StatusRequest(
        status=_status(number, _code(reference), reason_code, reason),
        invoice_id=None,
        invoice_number=number,
        invoice_issue_date=_issue_date_of(number, reference),
        seller_siren=_seller_siren(number, reference),
        reason_code=reason_code,
        reason=reason,
        mandate_number=_text(
            reference, f"ram:SpecifiedDocumentStatus/ram:IncludedNote[ram:SubjectCode='{MANDATE_SUBJECT}']/ram:Content"
        ),
    )


def _text(element: etree._Element, path: str) -> str | None:
    """The stripped text at path; an absent or blank element is None."""
    return (element.findtext(path, namespaces=NS) or "").strip() or None


def _code(reference: etree._Element) -> str | None:
    """The status code, on the reference or, as some senders write it, only in its status detail."""
    return _text(reference, "ram:ProcessConditionCode") or _text(
        reference, "ram:SpecifiedDocumentStatus/ram:ProcessConditionCode"
    )


def _status(number: str, code: str | None, reason_code: str | None, reason: str | None) -> Status:
    """The status a recipient means by code, with the reason the reform requires for it."""
    if code is None:
        raise StatusMessageError(f"Invoice {number}: no ProcessConditionCode (the status code)")
    status = from_cdar(code, reason_code)
    if status is None:
        accepted = ", ".join(RECIPIENT_CODES)
        raise StatusMessageError(f"Invoice {number}: status code {code} cannot be sent by a recipient "
                                 f"(accepted: {accepted})")
    if code in REASON_REQUIRED_CODES and not (reason_code or reason):
        raise StatusMessageError(f"Invoice {number}: status code {code} needs a reason (ReasonCode or Reason)")
    return status


def _issue_date_of(number: str, reference: etree._Element) -> str | None:
    """The invoice's issue date as yyyy-mm-dd, from format 102 or 204 (both are seen in the wild)."""
    text = _text(reference, "ram:FormattedIssueDateTime/*")
    if text is None:
        return None
    match = _DATE.fullmatch(text)
    try:
        if match:
            return date(*map(int, match.groups()[:3])).isoformat()
    except ValueError:  # digits, but no calendar date (20240231)
        pass
    raise StatusMessageError(f"Invoice {number}: issue date {text!r} is not a date (yyyymmdd)")


def _seller_siren(number: str, reference: etree._Element) -> str | None:
    """The seller's SIREN; a SIRET is accepted and cut to the SIREN it starts with."""
    identifier = _text(reference, "ram:IssuerTradeParty/ram:GlobalID")
    if identifier is None:
        return None
    if not _SIREN_OR_SIRET.fullmatch(identifier):
        raise StatusMessageError(f"Invoice {number}: seller {identifier!r} is not a SIREN (9 digits) or SIRET")
    return identifier[:9]
