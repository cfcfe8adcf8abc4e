"""Status messages: CDAR, Peppol Invoice Response and the gateway's own XML, written and read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree

from gateway.lifecycle.cdar import NS as CDAR
from gateway.lifecycle.cdar import build_cdar, parse_cdar
from gateway.lifecycle.invoice_response import NS as UBL
from gateway.lifecycle.invoice_response import SCHEMA as APPLICATION_RESPONSE
from gateway.lifecycle.invoice_response import build_invoice_response
from gateway.lifecycle.notice import StatusMessageError, StatusNotice, StatusRequest
from gateway.lifecycle.status_xml import build_status_xml, parse_status_xml
from gateway.lifecycle.statuses import EQUIVALENTS, PLATFORM_REJECTION, Status
from gateway.returns import assert_valid, schema
from gateway.schemas import resource
from gateway.validate import safexml

STATUS = {"s": "urn:gateway:status:1"}
XSD = {"xs": "http://www.w3.org/2001/XMLSchema"}
AT = datetime(2024, 3, 1, 9, 30, 15)
EVERY_NOTICE = [*Status, None]  # None: the platform's rejection at integration (213)
REASONS = {Status.A_RECYCLER: "DEST_ERR", Status.REJETEE: "DOUBLON", Status.SUSPENDUE: "JUSTIF_ABS", None: "REJ_SEMAN"}
PLATFORM_ISSUED = {"200", "201", "202", "203", "213"}
# The reform's correspondence table (domain notes, "The reform"), written out here so that a change of
# EQUIVALENTS cannot pass unseen: status -> (CDAR code, label, Peppol code).
CORRESPONDENCE = {
    Status.DEPOSEE: ("200", "Déposée", "AB"), Status.EN_COURS_ACHEMINEMENT: ("201", "Émise", "AB"),
    Status.MISE_A_DISPOSITION: ("203", "Mise à disposition", "AB"), Status.A_RECYCLER: ("210", "Refusée", "RE"),
    Status.REJETEE: ("210", "Refusée", "RE"), Status.SUSPENDUE: ("208", "Suspendue", "UQ"),
    Status.SERVICE_FAIT: ("204", "Prise en charge", "IP"), Status.MANDATEE: ("204", "Prise en charge", "IP"),
    Status.MISE_A_DISPOSITION_COMPTABLE: ("204", "Prise en charge", "IP"),
    Status.COMPTABILISEE: ("204", "Prise en charge", "IP"),
    Status.MISE_EN_PAIEMENT: ("211", "Paiement transmis", "PD"), Status.COMPLETEE: ("209", "Complétée", "IP"),
}
# The comment that tells the supplier which status a 204 Prise en charge stands for.
COMMENTS = {
    Status.SERVICE_FAIT: "Le destinataire public a réalisé le service fait",
    Status.MANDATEE: "Le destinataire public a mandaté la facture",
    Status.MISE_A_DISPOSITION_COMPTABLE: "Le destinataire public a mis la facture à disposition du comptable public",
    Status.COMPTABILISEE: "Le comptable public a comptabilisé la facture",
}
TAKEN_IN_HAND = list(COMMENTS)
CDAR_XSD = (Path(__file__).resolve().parents[2] / "shared" / "rules" / "france-rfe-cdar" / "1xsd-CDAR_D22B_uncoupled"
            / "CrossDomainAcknowledgementAndResponse_100pD22B.xsd")


def notice(status: Status | None, **fields: object) -> StatusNotice:
    values: dict[str, object] = dict(
        message_id="I7-3", status=status, at=AT, invoice_id="I7", invoice_number="F-2024-001",
        invoice_issue_date="2024-02-28", invoice_type_code="380", seller_siret="12345678900011",
        buyer_siret="98765432100017", actor="mairie", reason_code=REASONS.get(status), reason=None,
        mandate_number=None, platform_siren="100000009",
    )
    return StatusNotice(**(values | fields))  # type: ignore[arg-type]


def code_of(status: Status | None) -> str:
    return (PLATFORM_REJECTION if status is None else EQUIVALENTS[status]).cdar


def texts(document: etree._Element, path: str, ns: dict[str, str]) -> list[str]:
    return document.xpath(f"({path})/text()", namespaces=ns)


def cdar_of(status: Status | None, **fields: object) -> etree._Element:
    return safexml.parse(build_cdar(notice(status, **fields)))


REFERENCE = "/rsm:CrossDomainAcknowledgementAndResponse/rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument"


def reference_path(tail: str) -> str:
    return f"{REFERENCE}/{tail}"


# --- CDAR, written ---------------------------------------------------------------------------------

@pytest.mark.parametrize("status", EVERY_NOTICE, ids=lambda s: getattr(s, "name", "PLATFORM_REJECTION"))
def test_cdar_carries_the_mandatory_elements(status: Status | None) -> None:
    """Status code and label, reason where required, invoice number and date, seller SIREN, guideline."""
    xml = build_cdar(notice(status))
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    cdar = safexml.parse(xml)
    code = code_of(status)
    assert texts(cdar, "//rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
                 CDAR) == ["urn.cpro.gouv.fr:1p0:CDV:invoice"]
    assert texts(cdar, reference_path("ram:ProcessConditionCode"), CDAR) == [code]
    assert texts(cdar, reference_path("ram:IssuerAssignedID"), CDAR) == ["F-2024-001"]
    assert texts(cdar, reference_path("ram:FormattedIssueDateTime/qdt:DateTimeString[@format='102']"),
                 CDAR) == ["20240228"]
    assert texts(cdar, reference_path("ram:IssuerTradeParty/ram:GlobalID[@schemeID='0002']"), CDAR) == ["123456789"]
    if code in {"206", "207", "208", "210", "213"}:
        assert texts(cdar, reference_path("ram:SpecifiedDocumentStatus/ram:ReasonCode"), CDAR) == [REASONS[status]]
    elif code == "204":  # no reason, but the comment naming the precise status
        assert texts(cdar, reference_path("ram:SpecifiedDocumentStatus/ram:IncludedNote/ram:Content"),
                     CDAR) == [COMMENTS[status]]
        assert cdar.xpath(reference_path("ram:SpecifiedDocumentStatus/ram:ReasonCode"), namespaces=CDAR) == []
    else:
        assert cdar.xpath(reference_path("ram:SpecifiedDocumentStatus"), namespaces=CDAR) == []
    expected_type = "305" if code in PLATFORM_ISSUED else "23"
    assert texts(cdar, "//rsm:AcknowledgementDocument/ram:TypeCode", CDAR) == [expected_type]


def test_codes_follow_the_reform_correspondence_table() -> None:
    """Every status's CDAR code, label and Peppol code; a comment for exactly the statuses sharing 204."""
    assert {s: (e.cdar, e.cdar_label, e.peppol) for s, e in EQUIVALENTS.items()} == CORRESPONDENCE
    assert {s: e.comment for s, e in EQUIVALENTS.items() if e.comment} == COMMENTS
    assert (PLATFORM_REJECTION.cdar, PLATFORM_REJECTION.peppol) == ("213", "RE")


@pytest.mark.parametrize("status", TAKEN_IN_HAND, ids=lambda s: s.name)
def test_public_buyer_statuses_are_204_with_the_comment_in_every_format(status: Status) -> None:
    """SERVICE_FAIT, MANDATEE, MISE_A_DISPOSITION_COMPTABLE, COMPTABILISEE: 204 Prise en charge and the
    comment naming the status in the CDAR and the gateway's XML, IP with the comment as text for Peppol."""
    sent = notice(status, mandate_number="M-9" if status is Status.MANDATEE else None)
    cdar = safexml.parse(build_cdar(sent))
    assert texts(cdar, reference_path("ram:ProcessConditionCode"), CDAR) == ["204"]
    assert texts(cdar, reference_path("ram:ProcessCondition"), CDAR) == ["Prise en charge"]
    detail = reference_path("ram:SpecifiedDocumentStatus")
    assert texts(cdar, f"{detail}/ram:ProcessConditionCode", CDAR) == ["204"]
    assert texts(cdar, f"{detail}/ram:IncludedNote[not(ram:SubjectCode)]/ram:Content", CDAR) == [COMMENTS[status]]
    mandate = texts(cdar, f"{detail}/ram:IncludedNote[ram:SubjectCode='PMT']/ram:Content", CDAR)
    assert mandate == (["M-9"] if status is Status.MANDATEE else [])
    own = build_status_xml(sent)
    assert_valid("status", own)
    assert texts(safexml.parse(own), "s:cdarCode | s:cdarLabel | s:cdarComment", STATUS) == [
        "204", "Prise en charge", COMMENTS[status]]
    response = build_invoice_response(sent)
    assert_valid(APPLICATION_RESPONSE, response)
    assert texts(etree.fromstring(response), "//cac:Response/cbc:ResponseCode | //cac:Response/cac:Status/*",
                 UBL) == ["IP", COMMENTS[status]]


@pytest.mark.parametrize("status", [*TAKEN_IN_HAND, Status.MISE_EN_PAIEMENT], ids=lambda s: s.name)
def test_204_cdar_is_valid_against_the_official_schema(status: Status) -> None:
    """The comment's IncludedNote sits where the CDAR D22B schema (FNFE-MPE 1.4.0.01) allows it."""
    if not CDAR_XSD.exists():
        pytest.skip(f"the official CDAR schema is not at {CDAR_XSD} (../shared/rules/france-rfe-cdar)")
    xsd = etree.XMLSchema(etree.parse(str(CDAR_XSD)))
    cdar = etree.fromstring(build_cdar(notice(status, mandate_number="M-9", reason="commentaire")))
    assert xsd.validate(cdar), xsd.error_log


def test_status_xml_of_a_status_without_comment_has_its_label_only() -> None:
    """cdarLabel always, cdarComment only where the code stands for several statuses."""
    document = safexml.parse(build_status_xml(notice(Status.SUSPENDUE)))
    assert texts(document, "s:cdarCode | s:cdarLabel", STATUS) == ["208", "Suspendue"]
    assert document.xpath("s:cdarComment", namespaces=STATUS) == []


@pytest.mark.parametrize(("status", "issuer"), [
    (Status.DEPOSEE, ["100000009", "WK"]), (None, ["100000009", "WK"]),
    (Status.SERVICE_FAIT, ["987654321", "BY"]), (Status.COMPLETEE, ["123456789", "SE"]),
])
def test_cdar_parties_are_the_platform_the_issuer_and_the_seller(status: Status | None, issuer: list[str]) -> None:
    """The platform sends, the party whose act the status is issues, the seller receives."""
    cdar = cdar_of(status)
    party = "//rsm:ExchangedDocument/ram:{}/ram:*[self::ram:GlobalID or self::ram:RoleCode]"
    assert texts(cdar, party.format("SenderTradeParty"), CDAR) == ["100000009", "WK"]
    assert texts(cdar, party.format("IssuerTradeParty"), CDAR) == issuer
    assert texts(cdar, party.format("RecipientTradeParty"), CDAR) == ["123456789", "SE"]


def test_cdar_times_are_utc_in_format_204() -> None:
    """A status set at 10:30:15 in Paris is written 09:30:15 UTC."""
    cdar = cdar_of(Status.SERVICE_FAIT, at=AT.replace(hour=10, tzinfo=timezone(timedelta(hours=1))))
    assert texts(cdar, "//ram:IssueDateTime/udt:DateTimeString[@format='204']", CDAR) == ["20240301093015"] * 2


@pytest.mark.parametrize(("supplier_siren", "recipient"), [
    ("812345676", [("GlobalID", "0002", "812345676"), ("RoleCode", None, "SE"), ("URIID", "0225", "812345676")]),
    (None, [("RoleCode", None, "SE"), ("URIID", None, "acme")]),
], ids=["account-siren", "account-name"])
def test_cdar_of_an_invoice_read_without_number_or_seller(supplier_siren: str | None,
                                                          recipient: list[tuple]) -> None:
    """A platform rejection of an unreadable invoice names it by the gateway's id, dates it the day of the message,
    goes to the depositing account (by the SIREN of its SIRET, else by its name) and leaves out the rest."""
    cdar = cdar_of(None, invoice_number=None, invoice_issue_date=None, invoice_type_code="999", seller_siret=None,
                   buyer_siret=None, supplier="acme", supplier_siren=supplier_siren)
    assert texts(cdar, reference_path("ram:IssuerAssignedID"), CDAR) == ["I7"]
    assert texts(cdar, reference_path("ram:FormattedIssueDateTime/qdt:DateTimeString"), CDAR) == ["20240301"]
    assert cdar.xpath("//ram:ReferenceReferencedDocument/ram:IssuerTradeParty"
                      " | //ram:ReferenceReferencedDocument/ram:TypeCode", namespaces=CDAR) == []
    party = cdar.xpath("//rsm:ExchangedDocument/ram:RecipientTradeParty//*[not(*)]", namespaces=CDAR)
    assert [(etree.QName(e).localname, e.get("schemeID"), e.text) for e in party] == recipient


# --- CDAR, read ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "code", "reason_code"), [
    (Status.SERVICE_FAIT, "204", None),
    (Status.SUSPENDUE, "208", "JUSTIF_ABS"),
    (Status.REJETEE, "210", "DOUBLON"),
    (Status.A_RECYCLER, "210", "DEST_ERR"),
    (Status.MISE_EN_PAIEMENT, "211", None),
])
def test_cdar_round_trips_what_a_recipient_may_send(status: Status, code: str, reason_code: str | None) -> None:
    """build_cdar then parse_cdar gives back the status, the invoice reference and the reason."""
    cdar = cdar_of(status, reason_code=reason_code, reason="commentaire" if reason_code else None)
    assert texts(cdar, reference_path("ram:ProcessConditionCode"), CDAR) == [code]
    assert parse_cdar(cdar) == [StatusRequest(
        status=status, invoice_id=None, invoice_number="F-2024-001", invoice_issue_date="2024-02-28",
        seller_siren="123456789", reason_code=reason_code, reason="commentaire" if reason_code else None,
        mandate_number=None,
    )]


def test_cdar_mandate_number_round_trips() -> None:
    """The mandate number travels as a payment note and is read back."""
    [request] = parse_cdar(cdar_of(Status.MANDATEE, mandate_number="M-42"))
    assert (request.status, request.mandate_number) == (Status.SERVICE_FAIT, "M-42")


FOREIGN_CDAR = b"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossDomainAcknowledgementAndResponse
    xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
    xmlns:qdt="urn:un:unece:uncefact:data:standard:QualifiedDataType:100">
  <rsm:ExchangedDocument><ram:ID>M1</ram:ID></rsm:ExchangedDocument>
  <rsm:AcknowledgementDocument>
    <ram:MultipleReferencesIndicator><udt:Indicator>true</udt:Indicator></ram:MultipleReferencesIndicator>
    <ram:ReferenceReferencedDocument>
      <ram:IssuerAssignedID> F-1 </ram:IssuerAssignedID>
      <ram:FormattedIssueDateTime>
        <udt:DateTimeString format="204">20240228120000</udt:DateTimeString>
      </ram:FormattedIssueDateTime>
      <ram:IssuerTradeParty><ram:GlobalID schemeID="0009">12345678900011</ram:GlobalID></ram:IssuerTradeParty>
      <ram:SpecifiedDocumentStatus>
        <ram:ReasonCode>CODE_ROUTAGE_ERR</ram:ReasonCode>
        <ram:ProcessConditionCode>210</ram:ProcessConditionCode>
      </ram:SpecifiedDocumentStatus>
    </ram:ReferenceReferencedDocument>
    <ram:ReferenceReferencedDocument>
      <ram:IssuerAssignedID>F-2</ram:IssuerAssignedID>
      <ram:ProcessConditionCode>204</ram:ProcessConditionCode>
    </ram:ReferenceReferencedDocument>
  </rsm:AcknowledgementDocument>
</rsm:CrossDomainAcknowledgementAndResponse>"""


def test_cdar_as_other_writers_write_it() -> None:
    """Several invoices, the code only in the status detail, a 204 date, a SIRET, no seller at all."""
    first, second = parse_cdar(safexml.parse(FOREIGN_CDAR))
    assert first == StatusRequest(
        status=Status.A_RECYCLER, invoice_id=None, invoice_number="F-1", invoice_issue_date="2024-02-28",
        seller_siren="123456789", reason_code="CODE_ROUTAGE_ERR", reason=None, mandate_number=None,
    )
    assert (second.status, second.invoice_number, second.seller_siren) == (Status.SERVICE_FAIT, "F-2", None)


def edited(status: Status | None, path: str, text: str | None, **fields: object) -> etree._Element:
    """A built CDAR with the element at path given new text, or removed (text None)."""
    cdar = cdar_of(status, **fields)
    element = cdar.xpath(reference_path(path), namespaces=CDAR)[0]
    if text is None:
        element.getparent().remove(element)
    else:
        element.text = text
    return cdar


@pytest.mark.parametrize("code", ["200", "201", "202", "203", "209", "212", "213", "501", "999", "abc"])
def test_cdar_codes_a_recipient_may_not_send_are_refused(code: str) -> None:
    """A code from_cdar does not map is refused, naming the code."""
    with pytest.raises(StatusMessageError, match=f"status code {code} cannot be sent"):
        parse_cdar(edited(Status.SERVICE_FAIT, "ram:ProcessConditionCode", code))


@pytest.mark.parametrize(("status", "path", "text", "message"), [
    (Status.SERVICE_FAIT, "ram:IssuerAssignedID", None, "no IssuerAssignedID"),
    (Status.SERVICE_FAIT, "ram:IssuerAssignedID", "  ", "no IssuerAssignedID"),
    (Status.MISE_EN_PAIEMENT, "ram:ProcessConditionCode", None, "no ProcessConditionCode"),  # no status detail
    (Status.REJETEE, "ram:SpecifiedDocumentStatus", None, "status code 210 needs a reason"),
    (Status.SERVICE_FAIT, "ram:FormattedIssueDateTime/qdt:DateTimeString", "20240231", "is not a date"),
    (Status.SERVICE_FAIT, "ram:FormattedIssueDateTime/qdt:DateTimeString", "28/02/2024", "is not a date"),
    (Status.SERVICE_FAIT, "ram:IssuerTradeParty/ram:GlobalID", "12345", "is not a SIREN"),
])
def test_cdar_that_cannot_be_acted_on_is_refused(status: Status, path: str, text: str | None, message: str) -> None:
    """Missing number or code, a refusal without reason, a bad date or SIREN: a clear StatusMessageError."""
    with pytest.raises(StatusMessageError, match=message):
        parse_cdar(edited(status, path, text))


def test_cdar_parser_refuses_another_document_or_one_without_invoice() -> None:
    """Another root, or a CDAR that references no invoice."""
    with pytest.raises(StatusMessageError, match="Not a CDAR message"):
        parse_cdar(safexml.parse(build_status_xml(notice(Status.SERVICE_FAIT))))
    cdar = cdar_of(Status.SERVICE_FAIT)
    for reference in cdar.xpath(reference_path("."), namespaces=CDAR):
        reference.getparent().remove(reference)
    with pytest.raises(StatusMessageError, match="references no invoice"):
        parse_cdar(cdar)


# --- Peppol Invoice Response ---------------------------------------------------------------------

@pytest.mark.parametrize("status", EVERY_NOTICE, ids=lambda s: getattr(s, "name", "PLATFORM_REJECTION"))
def test_invoice_response_is_valid_and_carries_the_peppol_code(status: Status | None) -> None:
    """Valid against the UBL 2.1 ApplicationResponse schema, with the Peppol code and a clarification
    wherever Peppol requires one (UQ, RE: rule PEPPOL-T111-R001)."""
    xml = build_invoice_response(notice(status))
    assert_valid(APPLICATION_RESPONSE, xml)
    response = etree.fromstring(xml)
    peppol = (PLATFORM_REJECTION if status is None else EQUIVALENTS[status]).peppol
    assert texts(response, "/ubl:ApplicationResponse/cbc:CustomizationID", UBL) == [
        "urn:fdc:peppol.eu:poacc:trns:invoice_response:3"]
    assert texts(response, "//cac:Response/cbc:ResponseCode[@listID='UNCL4343OpSubset']", UBL) == [peppol]
    assert texts(response, "//cac:DocumentReference/cbc:ID", UBL) == ["F-2024-001"]
    clarified = texts(response, "//cac:Response/cac:Status/cbc:StatusReasonCode[@listID='OPStatusReason']", UBL)
    assert bool(clarified) == (peppol in {"UQ", "RE"})


@pytest.mark.parametrize(("status", "sender"), [
    (Status.MISE_A_DISPOSITION, ("0002", "100000009")), (None, ("0002", "100000009")),
    (Status.SERVICE_FAIT, ("0009", "98765432100017")),
])
def test_invoice_response_goes_from_the_buyer_or_platform_to_the_seller(status: Status | None,
                                                                          sender: tuple[str, str]) -> None:
    """The buyer answers the seller; the platform speaks for its own statuses."""
    response = etree.fromstring(build_invoice_response(notice(status)))
    endpoint = response.xpath("//cac:SenderParty/cbc:EndpointID", namespaces=UBL)[0]
    assert (endpoint.get("schemeID"), endpoint.text) == sender
    assert texts(response, "//cac:ReceiverParty/cbc:EndpointID[@schemeID='0009']", UBL) == ["12345678900011"]


def test_invoice_response_clarification_maps_the_reform_reason() -> None:
    """A wrong recipient is REC (receiver unknown); the reform's code and text stay readable."""
    response = etree.fromstring(build_invoice_response(notice(Status.A_RECYCLER, reason="service fermé")))
    assert texts(response, "//cac:Status/cbc:StatusReasonCode", UBL) == ["REC"]
    assert texts(response, "//cac:Status/cbc:StatusReason", UBL) == ["DEST_ERR: service fermé"]


def without(xml: bytes, path: str) -> bytes:
    document = etree.fromstring(xml)
    element = document.xpath(path, namespaces=UBL)[0]
    element.getparent().remove(element)
    return etree.tostring(document)


@pytest.mark.parametrize("breakage", ["root", "id", "document response", "order"])
def test_application_response_schema_refuses_a_broken_response(breakage: str) -> None:
    """The schema really checks: a wrong root, a missing mandatory element or a wrong order fails."""
    xml = build_invoice_response(notice(Status.SERVICE_FAIT))
    if breakage == "root":
        xml = xml.replace(b"ubl:ApplicationResponse", b"ubl:ApplicationReply")
    elif breakage == "id":
        xml = without(xml, "/ubl:ApplicationResponse/cbc:ID")
    elif breakage == "document response":
        xml = without(xml, "//cac:DocumentResponse")
    else:
        document = etree.fromstring(xml)
        document.append(document.xpath("cbc:ID", namespaces=UBL)[0])  # moved after DocumentResponse
        xml = etree.tostring(document)
    with pytest.raises(ValueError, match="invalid against"):
        assert_valid(APPLICATION_RESPONSE, xml)


# --- the gateway's own status XML ----------------------------------------------------------------

@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.name)
def test_status_xml_is_valid_and_round_trips(status: Status) -> None:
    """Valid against status.xsd, and read back as the same request."""
    sent = notice(status, reason="commentaire", mandate_number="M-1")
    xml = build_status_xml(sent)
    assert_valid("status", xml)
    document = safexml.parse(xml)
    assert texts(document, "/s:statusUpdate/s:*[self::s:statusCode or self::s:statusName or self::s:cdarCode]",
                 STATUS) == [status.value, status.name, code_of(status)]
    assert texts(document, "/s:statusUpdate/s:at", STATUS) == ["2024-03-01T09:30:15Z"]
    assert parse_status_xml(document) == StatusRequest(
        status=status, invoice_id="I7", invoice_number="F-2024-001", invoice_issue_date="2024-02-28",
        seller_siren=None, reason_code=REASONS.get(status), reason="commentaire", mandate_number="M-1",
    )


def test_status_xml_of_a_platform_rejection_is_valid_but_not_a_request() -> None:
    """The platform's rejection is written (213, REJ_* reason); a recipient may not send it."""
    xml = build_status_xml(notice(None))
    assert_valid("status", xml)
    document = safexml.parse(xml)
    assert document.xpath("s:rejectedByPlatform", namespaces=STATUS)
    assert texts(document, "s:cdarCode | s:reasonCode", STATUS) == ["213", "REJ_SEMAN"]
    with pytest.raises(StatusMessageError, match="gateway only"):
        parse_status_xml(document)


def request(body: str) -> etree._Element:
    return safexml.parse(f'<statusUpdate xmlns="urn:gateway:status:1">{body}</statusUpdate>'.encode())


@pytest.mark.parametrize(("body", "status"), [
    ("<invoiceId>I7</invoiceId><statusCode>07</statusCode>", Status.SERVICE_FAIT),
    ("<invoiceId>I7</invoiceId><statusName> SUSPENDUE </statusName><reasonCode>JUSTIF_ABS</reasonCode>",
     Status.SUSPENDUE),
    ("<invoiceId>I7</invoiceId><statusCode>08</statusCode><statusName>MANDATEE</statusName>", Status.MANDATEE),
])
def test_status_xml_request_names_the_status_by_code_or_name(body: str, status: Status) -> None:
    """A recipient's minimal request: the invoice id and the status, by code, name or both."""
    assert parse_status_xml(request(body)).status is status


@pytest.mark.parametrize(("body", "message"), [
    ("<statusCode>07</statusCode>", "invoiceId"),
    ("<invoiceId>I7</invoiceId>", "Missing child element"),
    ("<invoiceId>I7</invoiceId><statusCode>13</statusCode>", "13"),
    ("<invoiceId>I7</invoiceId><statusName>PAYEE</statusName>", "PAYEE"),
    ("<invoiceId>I7</invoiceId><statusCode>07</statusCode><statusName>REJETEE</statusName>", "is SERVICE_FAIT"),
    ("<invoiceId>I7</invoiceId><statusCode>07</statusCode><surprise/>", "surprise"),
])
def test_status_xml_bad_request_is_refused_with_the_schema_message(body: str, message: str) -> None:
    """An invalid or contradictory request raises StatusMessageError saying what is wrong."""
    with pytest.raises(StatusMessageError, match=message):
        parse_status_xml(request(body))


def test_status_xml_in_another_namespace_is_refused() -> None:
    """The schema only knows urn:gateway:status:1."""
    with pytest.raises(StatusMessageError, match="Invalid status message"):
        parse_status_xml(safexml.parse(b"<statusUpdate><invoiceId>I7</invoiceId></statusUpdate>"))


def test_status_schema_lists_exactly_the_statuses() -> None:
    """status.xsd's code and name lists are the Status enum's, in the same order."""
    xsd = schema("status")  # compiles
    assert xsd is schema("status")
    document = etree.parse(str(resource("status.xsd")))
    values = {name: document.xpath(f"//xs:simpleType[@name='{name}']//xs:enumeration/@value", namespaces=XSD)
              for name in ("StatusCode", "StatusName")}
    assert values == {"StatusCode": [s.value for s in Status], "StatusName": [s.name for s in Status]}


# --- shared rules ----------------------------------------------------------------------------------

HOSTILE = "a < b && \x00c\x1b[31m é 名 \U0001f9fe \udc80 end"
CLEAN = "a < b && c[31m é 名 \U0001f9fe  end"


@pytest.mark.parametrize("status", [Status.REJETEE, None], ids=["REJETEE", "PLATFORM_REJECTION"])
def test_hostile_text_stays_well_formed_and_valid(status: Status | None) -> None:
    """&, <, control characters and lone surrogates in any value never break a document."""
    sent = notice(status, invoice_number="<F&1>\x07", reason=HOSTILE, actor="m\x1fairie&")
    cdar = safexml.parse(build_cdar(sent))
    assert texts(cdar, reference_path("ram:SpecifiedDocumentStatus/ram:Reason"), CDAR) == [CLEAN]
    assert texts(cdar, reference_path("ram:IssuerAssignedID"), CDAR) == ["<F&1>"]
    assert_valid(APPLICATION_RESPONSE, build_invoice_response(sent))
    own = build_status_xml(sent)
    assert_valid("status", own)
    assert texts(safexml.parse(own), "s:comment | s:actor", STATUS) == ["mairie&", CLEAN]


def test_notice_that_needs_a_reason_without_one_is_refused() -> None:
    """A refusal, suspension or platform rejection cannot be told without a reason code or text."""
    for status in (Status.REJETEE, Status.SUSPENDUE, Status.A_RECYCLER, None):
        with pytest.raises(ValueError, match="needs a reason"):
            notice(status, reason_code=None, reason=None)
    assert notice(Status.REJETEE, reason_code=None, reason="texte seul").reason == "texte seul"


def test_invoice_response_times_are_utc() -> None:
    """Issue date and time of the response in UTC: 00:30 in Paris is the day before."""
    at = datetime(2024, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    response = etree.fromstring(build_invoice_response(notice(Status.SERVICE_FAIT, at=at)))
    assert texts(response, "/ubl:ApplicationResponse/cbc:IssueDate | /ubl:ApplicationResponse/cbc:IssueTime",
                 UBL) == ["2024-02-29", "23:30:00Z"]
