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

from typing import NamedTuple

from gateway.lifecycle.notice import StatusNotice
from gateway.xmlwrite import utc, xml_template

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

# The sender is the buyer, by SIRET, or the platform, by SIREN; the receiver the seller, by SIRET, when known.
RESPONSE = xml_template("""\
<?xml version='1.0' encoding='UTF-8'?>
<ubl:ApplicationResponse xmlns:ubl="{{ ubl }}" xmlns:cac="{{ cac }}" xmlns:cbc="{{ cbc }}">
  <cbc:CustomizationID>{{ customization_id }}</cbc:CustomizationID>
  <cbc:ProfileID>{{ profile_id }}</cbc:ProfileID>
  <cbc:ID>{{ notice.message_id }}</cbc:ID>
  <cbc:IssueDate>{{ issue_date }}</cbc:IssueDate>
  <cbc:IssueTime>{{ issue_time }}</cbc:IssueTime>
  <cac:SenderParty>
    {% if by_buyer %}
    <cbc:EndpointID schemeID="{{ siret_scheme }}">{{ notice.buyer_siret }}</cbc:EndpointID>
    {% else %}
    <cbc:EndpointID schemeID="{{ siren_scheme }}">{{ notice.platform_siren }}</cbc:EndpointID>
    {% endif %}
  </cac:SenderParty>
  <cac:ReceiverParty>
    {% if notice.seller_siret is not none %}
    <cbc:EndpointID schemeID="{{ siret_scheme }}">{{ notice.seller_siret }}</cbc:EndpointID>
    {% endif %}
  </cac:ReceiverParty>
  <cac:DocumentResponse>
    <cac:Response>
      <cbc:ResponseCode listID="{{ response_list }}">{{ notice.equivalent.peppol }}</cbc:ResponseCode>
      {% if clarification is not none %}
      <cac:Status>
        {% if clarification.code is not none %}
        <cbc:StatusReasonCode listID="{{ reason_list }}">{{ clarification.code }}</cbc:StatusReasonCode>
        {% endif %}
        <cbc:StatusReason>{{ clarification.text }}</cbc:StatusReason>
      </cac:Status>
      {% endif %}
    </cac:Response>
    <cac:DocumentReference>
      <cbc:ID>{{ notice.invoice_reference }}</cbc:ID>
      {% if notice.invoice_issue_date is not none %}
      <cbc:IssueDate>{{ notice.invoice_issue_date }}</cbc:IssueDate>
      {% endif %}
      {% if notice.invoice_type_code is not none %}
      <cbc:DocumentTypeCode>{{ notice.invoice_type_code }}</cbc:DocumentTypeCode>
      {% endif %}
    </cac:DocumentReference>
  </cac:DocumentResponse>
</ubl:ApplicationResponse>
""", **NS, customization_id=CUSTOMIZATION_ID, profile_id=PROFILE_ID, siret_scheme=SIRET_SCHEME,
    siren_scheme=SIREN_SCHEME, response_list=RESPONSE_LIST, reason_list=REASON_LIST)


def build_invoice_response(notice: StatusNotice) -> bytes:
    """The Invoice Response telling the supplier of notice, in the element order of the UBL schema."""
    at = utc(notice.at)
    # the buyer sends it; the platform, for its own statuses and for an invoice without a known buyer
    by_buyer = bool(notice.buyer_siret) and not notice.issued_by_platform
    return RESPONSE.render(notice=notice, issue_date=at.date().isoformat(), issue_time=at.strftime("%H:%M:%SZ"),
                           by_buyer=by_buyer, clarification=_clarification(notice)).encode()


class Clarification(NamedTuple):
    """Why: a clarification code (OPStatusReason), or none, and a text."""

    code: str | None
    text: str


def _clarification(notice: StatusNotice) -> Clarification | None:
    """Why, for a status given with a reason: a clarification code and the reform's code and text; for a
    status without one whose code stands for several (IP for 204), the comment naming it, as text only."""
    if not (notice.reason_code or notice.reason):
        comment = notice.equivalent.comment
        return Clarification(None, comment) if comment else None
    code = CLARIFICATIONS.get((notice.reason_code or "").upper(), OTHER_REASON)
    text = ": ".join(part for part in (notice.reason_code, notice.reason) if part)
    return Clarification(code, text)
