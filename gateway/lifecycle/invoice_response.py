"""The Peppol Invoice Response (BIS invoice_response 3): a UBL 2.1 ApplicationResponse, for suppliers whose
software speaks Peppol.

It is the buyer's answer to the seller, so the buyer sends it and the seller receives it; a status the
platform issued while carrying the invoice (deposit, delivery, rejection at integration) is sent by the
platform. Parties are addressed by SIRET (scheme 0009) or, for the platform, by SIREN (0002).
Validated against the OASIS ApplicationResponse schema (gateway/schemas/UBL-ApplicationResponse-2.1.xsd).

The reform's reason codes become Peppol clarification codes (OPStatusReason); the reform's code itself
stays readable at the head of the clarification text. Peppol requires a clarification for UQ and RE,
which the notice always has: a suspension or refusal carries a reason. The statuses the reform tells as
204 Prise en charge are IP (in process) here, with the comment naming the precise status as clarification
text. A mandate number has no place
in an Invoice Response; CDAR and the gateway's own format carry it.
"""

from __future__ import annotations

from lxml import etree

from gateway.lifecycle.notice import StatusNotice
from gateway.xmlwrite import maker, optional, serialize, utc

NS = {
    "ubl": "urn:oasis:names:specification:ubl:schema:xsd:ApplicationResponse-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
SCHEMA = "UBL-ApplicationResponse-2.1"
CUSTOMIZATION_ID = "urn:fdc:peppol.eu:poacc:trns:invoice_response:3"
PROFILE_ID = "urn:fdc:peppol.eu:poacc:bis:invoice_response:3"
SIRET_SCHEME, SIREN_SCHEME = "0009", "0002"
RESPONSE_LIST, REASON_LIST = "UNCL4343OpSubset", "OPStatusReason"
OTHER_REASON = "OTH"
# The reform's reasons in Peppol's clarification codes: REC receiver unknown, REF references incorrect,
# LEG legal information incorrect; any other (duplicate, missing documents, REJ_SEMAN...) is OTH.
CLARIFICATIONS = {
    "DEST_INC": "REC", "DEST_ERR": "REC", "REJ_ADR": "REC",
    "CODE_ROUTAGE_ERR": "REF", "REF_CT_ABSENT": "REF",
    "SIRET_ERR": "LEG", "REJ_CONT_B2G": "LEG",
}

UBL, CAC, CBC = (maker(NS[prefix], NS) for prefix in ("ubl", "cac", "cbc"))


def build_invoice_response(notice: StatusNotice) -> bytes:
    """The Invoice Response telling the supplier of notice, in the element order of the UBL schema."""
    at = utc(notice.at)
    document = UBL.ApplicationResponse(
        CBC.CustomizationID(CUSTOMIZATION_ID),
        CBC.ProfileID(PROFILE_ID),
        CBC.ID(notice.message_id),
        CBC.IssueDate(at.date().isoformat()),
        CBC.IssueTime(at.strftime("%H:%M:%SZ")),
        CAC.SenderParty(_endpoint(*_sender(notice))),
        CAC.ReceiverParty(optional(_endpoint, notice.seller_siret, scheme=SIRET_SCHEME)),
        CAC.DocumentResponse(_response(notice), _invoice_reference(notice)),
    )
    return serialize(document)


def _sender(notice: StatusNotice) -> tuple[str, str]:
    """The buyer, or the platform for its own statuses and for an invoice without a known buyer."""
    if notice.buyer_siret and not notice.issued_by_platform:
        return notice.buyer_siret, SIRET_SCHEME
    return notice.platform_siren, SIREN_SCHEME


def _endpoint(identifier: str, scheme: str) -> etree._Element:
    return CBC.EndpointID(identifier, schemeID=scheme)


def _response(notice: StatusNotice) -> etree._Element:
    return CAC.Response(
        CBC.ResponseCode(notice.equivalent.peppol, listID=RESPONSE_LIST),
        _clarification(notice),
    )


def _clarification(notice: StatusNotice) -> etree._Element | None:
    """Why, for a status given with a reason: a clarification code and the reform's code and text; for a
    status without one whose code stands for several (IP for 204), the comment naming it, as text only."""
    if not (notice.reason_code or notice.reason):
        comment = notice.equivalent.comment
        return CAC.Status(CBC.StatusReason(comment)) if comment else None
    code = CLARIFICATIONS.get((notice.reason_code or "").upper(), OTHER_REASON)
    text = ": ".join(part for part in (notice.reason_code, notice.reason) if part)
    return CAC.Status(CBC.StatusReasonCode(code, listID=REASON_LIST), CBC.StatusReason(text))


def _invoice_reference(notice: StatusNotice) -> etree._Element:
    return CAC.DocumentReference(
        CBC.ID(notice.invoice_reference),
        optional(CBC.IssueDate, notice.invoice_issue_date),
        optional(CBC.DocumentTypeCode, notice.invoice_type_code),
    )
