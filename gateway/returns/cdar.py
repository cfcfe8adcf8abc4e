"""The reform's lifecycle message (CDAR, "Flux 6"): written to suppliers, read from recipients.

UN/CEFACT CrossDomainAcknowledgementAndResponse D22B as the AFNOR XP Z12-012 layout uses it. No official
XSD is available offline, so the element order follows the D22B sequences as public CDAR implementations
write them: context (business process, then guideline); exchanged document (ID, Name, IssueDateTime,
sender, issuer, recipient parties); acknowledgement (MultipleReferencesIndicator, TypeCode,
IssueDateTime, ReferenceReferencedDocument); referenced invoice (IssuerAssignedID, TypeCode,
FormattedIssueDateTime, ProcessConditionCode, ProcessCondition, IssuerTradeParty,
SpecifiedDocumentStatus); status detail (ReasonCode, Reason, ProcessConditionCode, SequenceNumeric,
IncludedNote); party (GlobalID, RoleCode).

The gateway's choices where the format leaves room:
- every party is named by SIREN (scheme 0002), the platform too (role WK; seller SE, buyer BY);
- TypeCode 305 for a status the platform issued while carrying the invoice, 23 for a party's own;
- the mandate number of MANDATEE travels as an IncludedNote of subject PMT (UNTDID 4451, payment
  information): the format has no field of its own for it;
- a code several statuses share (204 Prise en charge: service fait, mandatée, mise à disposition du
  comptable, comptabilisée) comes with a comment naming the precise status, an IncludedNote of the status
  detail without a subject code, before the mandate's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime

from lxml import etree

from gateway.lifecycle.statuses import Status, from_cdar
from gateway.returns.ack import serialize
from gateway.returns.elements import maker, optional, utc
from gateway.returns.notice import REASON_REQUIRED_CODES, StatusMessageError, StatusNotice, StatusRequest

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
SIREN_SCHEME = "0002"
PLATFORM_ROLE, SELLER_ROLE, BUYER_ROLE = "WK", "SE", "BY"
PLATFORM_STATUS_TYPE, PARTY_STATUS_TYPE = "305", "23"
SELLER_CODES = frozenset({"209"})  # Complétée: the seller's act (it sent what was missing)
MANDATE_SUBJECT = "PMT"
# What a recipient may send: the codes from_cdar turns into a status.
RECIPIENT_CODES = tuple(code for code in map(str, range(200, 214)) if from_cdar(code, None) is not None)

RSM, RAM, UDT, QDT = (maker(NS[prefix], NS) for prefix in ("rsm", "ram", "udt", "qdt"))
_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{6})?")  # format 102 (yyyymmdd) or 204 (yyyymmddhhmmss)
_SIREN_OR_SIRET = re.compile(r"\d{9}(\d{5})?")


def build_cdar(notice: StatusNotice) -> bytes:
    """The CDAR message telling the supplier of notice: the platform sends it, the seller receives it."""
    document = RSM.CrossDomainAcknowledgementAndResponse(
        RSM.ExchangedDocumentContext(
            RAM.BusinessProcessSpecifiedDocumentContextParameter(RAM.ID(BUSINESS_PROCESS)),
            RAM.GuidelineSpecifiedDocumentContextParameter(RAM.ID(GUIDELINE)),
        ),
        RSM.ExchangedDocument(
            RAM.ID(notice.message_id),
            RAM.Name(MESSAGE_NAME),
            RAM.IssueDateTime(_timestamp(notice.at)),
            RAM.SenderTradeParty(*_party(notice.platform_siren, PLATFORM_ROLE)),
            RAM.IssuerTradeParty(*_party(*_issuer(notice))),
            _seller(RAM.RecipientTradeParty, notice),
        ),
        RSM.AcknowledgementDocument(
            RAM.MultipleReferencesIndicator(UDT.Indicator("false")),
            RAM.TypeCode(PLATFORM_STATUS_TYPE if notice.issued_by_platform else PARTY_STATUS_TYPE),
            RAM.IssueDateTime(_timestamp(notice.at)),
            _referenced_invoice(notice),
        ),
    )
    return serialize(document)


def _timestamp(moment: datetime) -> etree._Element:
    return UDT.DateTimeString(utc(moment).strftime("%Y%m%d%H%M%S"), format="204")


def _party(siren: str, role: str) -> tuple[etree._Element, ...]:
    return RAM.GlobalID(siren, schemeID=SIREN_SCHEME), RAM.RoleCode(role)


def _seller(make: Callable[..., etree._Element], notice: StatusNotice) -> etree._Element | None:
    """The seller under make's tag, when the invoice named it (not so for one too broken to read)."""
    return make(*_party(notice.seller_siren, SELLER_ROLE)) if notice.seller_siren else None


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


def _referenced_invoice(notice: StatusNotice) -> etree._Element:
    """The invoice (number, type, issue date, seller SIREN) and the status it took."""
    equivalent = notice.equivalent
    return RAM.ReferenceReferencedDocument(
        RAM.IssuerAssignedID(notice.invoice_reference),
        optional(RAM.TypeCode, notice.invoice_type_code),
        optional(_issue_date, notice.invoice_issue_date),
        RAM.ProcessConditionCode(equivalent.cdar),
        RAM.ProcessCondition(equivalent.cdar_label),
        _seller(RAM.IssuerTradeParty, notice),
        _document_status(notice),
    )


def _issue_date(iso: str) -> etree._Element:
    return RAM.FormattedIssueDateTime(QDT.DateTimeString(date.fromisoformat(iso).strftime("%Y%m%d"), format="102"))


def _document_status(notice: StatusNotice) -> etree._Element | None:
    """The reason, the comment naming the precise status and the mandate; a status that has none needs none."""
    comment = notice.equivalent.comment
    if not (notice.reason_code or notice.reason or notice.mandate_number or comment):
        return None
    return RAM.SpecifiedDocumentStatus(
        optional(RAM.ReasonCode, notice.reason_code),
        optional(RAM.Reason, notice.reason),
        RAM.ProcessConditionCode(notice.cdar_code),
        RAM.SequenceNumeric("1"),
        optional(_comment_note, comment),
        optional(_mandate_note, notice.mandate_number),
    )


def _comment_note(comment: str) -> etree._Element:
    return RAM.IncludedNote(RAM.Content(comment))


def _mandate_note(number: str) -> etree._Element:
    return RAM.IncludedNote(RAM.Content(number), RAM.SubjectCode(MANDATE_SUBJECT))


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
