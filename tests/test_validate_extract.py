"""Routing data extracted from small hand-written UBL and CII invoices (paths from the domain notes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.validate import check_document
from gateway.validate.extract import InvoiceData

UBL_NS = """xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
    xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\""""

UBL_PARTIES = """
  <cac:AccountingSupplierParty><cac:Party>
    <cac:PartyIdentification><cbc:ID schemeID="0002">356000000</cbc:ID></cac:PartyIdentification>
    <cac:PartyLegalEntity>
      <cbc:RegistrationName>Fournisseur SA</cbc:RegistrationName>
      <cbc:CompanyID schemeID="0009"> 35600000000048 </cbc:CompanyID>
    </cac:PartyLegalEntity>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party>
    <cac:PartyIdentification><cbc:ID schemeID="0009">11000201100044</cbc:ID></cac:PartyIdentification>
    <cac:PartyLegalEntity>
      <cbc:RegistrationName>Ministere</cbc:RegistrationName>
      <cbc:CompanyID schemeID="0002">110002011</cbc:CompanyID>
    </cac:PartyLegalEntity>
  </cac:Party></cac:AccountingCustomerParty>"""

UBL_INVOICE = f"""<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" {UBL_NS}>
  <cbc:ID>
    FA-2024-0042
  </cbc:ID>
  <cbc:IssueDate>2024-03-15</cbc:IssueDate>
  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cbc:BuyerReference>SERVICE-COMPTA</cbc:BuyerReference>
  <cac:OrderReference><cbc:ID>EJ1000042</cbc:ID></cac:OrderReference>{UBL_PARTIES}
  <cac:LegalMonetaryTotal>
    <cbc:TaxInclusiveAmount currencyID="EUR">120.00</cbc:TaxInclusiveAmount>
    <cbc:PrepaidAmount currencyID="EUR">20.00</cbc:PrepaidAmount>
    <cbc:PayableAmount currencyID="EUR">100.00</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
  <cac:InvoiceLine>
    <cbc:ID>1</cbc:ID>
    <cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount>
    <cac:Item><cbc:Name>Audit</cbc:Name></cac:Item>
  </cac:InvoiceLine>
</Invoice>
"""

UBL_CREDIT_NOTE = f"""<?xml version="1.0" encoding="UTF-8"?>
<CreditNote xmlns="urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2" {UBL_NS}>
  <cbc:ID>AV-7</cbc:ID>
  <cbc:IssueDate>2024-12-31+01:00</cbc:IssueDate>
  <cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>{UBL_PARTIES}
  <cac:LegalMonetaryTotal><cbc:PayableAmount currencyID="EUR">5.50</cbc:PayableAmount></cac:LegalMonetaryTotal>
  <cac:CreditNoteLine>
    <cbc:ID>1</cbc:ID>
    <cbc:LineExtensionAmount currencyID="EUR">5.50</cbc:LineExtensionAmount>
    <cac:Item><cbc:Name>Remise</cbc:Name></cac:Item>
  </cac:CreditNoteLine>
</CreditNote>
"""

CII_INVOICE = """<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext>
    <ram:GuidelineSpecifiedDocumentContextParameter>
      <ram:ID>urn:cen.eu:en16931:2017</ram:ID>
    </ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
    <ram:ID>FC/2024/7</ram:ID>
    <ram:TypeCode>380</ram:TypeCode>
    <ram:IssueDateTime><udt:DateTimeString format="102">20240229</udt:DateTimeString></ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:BuyerReference> SERV-42 </ram:BuyerReference>
      <ram:SellerTradeParty>
        <ram:GlobalID schemeID="0088">5412345000013</ram:GlobalID>
        <ram:GlobalID schemeID="0009">35600000000048</ram:GlobalID>
        <ram:Name>Fournisseur SA</ram:Name>
      </ram:SellerTradeParty>
      <ram:BuyerTradeParty>
        <ram:GlobalID schemeID="0009">99999999999999</ram:GlobalID>
        <ram:Name>Ministere</ram:Name>
        <ram:SpecifiedLegalOrganization>
          <ram:ID schemeID="0009">11000201100044</ram:ID>
        </ram:SpecifiedLegalOrganization>
      </ram:BuyerTradeParty>
      <ram:BuyerOrderReferencedDocument>
        <ram:IssuerAssignedID>EJ2000777</ram:IssuerAssignedID>
      </ram:BuyerOrderReferencedDocument>
    </ram:ApplicableHeaderTradeAgreement>
    <ram:ApplicableHeaderTradeDelivery/>
    <ram:ApplicableHeaderTradeSettlement>
      <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
      <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
        <ram:LineTotalAmount>200.00</ram:LineTotalAmount>
        <ram:GrandTotalAmount>240.00</ram:GrandTotalAmount>
        <ram:TotalPrepaidAmount>40.00</ram:TotalPrepaidAmount>
        <ram:DuePayableAmount>200.00</ram:DuePayableAmount>
      </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    </ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"""


def data_of(document: str) -> InvoiceData:
    """Routing data of a document that must pass admissibility and the XSD."""
    checked = check_document(document.encode())
    assert checked.valid, checked.findings
    assert checked.data is not None
    return checked.data


def test_ubl_invoice() -> None:
    assert data_of(UBL_INVOICE) == InvoiceData(
        syntax="ubl-invoice",
        number="FA-2024-0042",
        issue_date="2024-03-15",
        type_code="380",
        seller_siret="35600000000048",  # CompanyID 0009; the 0002 PartyIdentification is not a SIRET
        buyer_siret="11000201100044",  # PartyIdentification 0009; the 0002 CompanyID is not a SIRET
        service_code="SERVICE-COMPTA",
        engagement="EJ1000042",
        total="100.00",
        currency="EUR",
    )


def test_ubl_credit_note() -> None:
    assert data_of(UBL_CREDIT_NOTE) == InvoiceData(
        syntax="ubl-creditnote",
        number="AV-7",
        issue_date="2024-12-31",
        type_code="381",
        seller_siret="35600000000048",
        buyer_siret="11000201100044",
        total="5.50",
        currency="EUR",
    )


def test_cii_invoice() -> None:
    assert data_of(CII_INVOICE) == InvoiceData(
        syntax="cii",
        number="FC/2024/7",
        issue_date="2024-02-29",
        type_code="380",
        seller_siret="35600000000048",  # the GlobalID with scheme 0009, not the first GlobalID
        buyer_siret="11000201100044",  # SpecifiedLegalOrganization wins over GlobalID
        service_code="SERV-42",
        engagement="EJ2000777",
        total="200.00",
        currency="EUR",
        specification="urn:cen.eu:en16931:2017",
    )


def test_ubl_company_id_wins_over_party_identification() -> None:
    document = UBL_INVOICE.replace(
        '<cbc:ID schemeID="0002">356000000</cbc:ID>', '<cbc:ID schemeID="0009">35600000000099</cbc:ID>'
    )
    assert data_of(document).seller_siret == "35600000000048"


@pytest.mark.parametrize("text", ["20240230", "2024-02-28", "202402", "2024022812"])
def test_cii_date_not_a_format_102_date_is_none(text: str) -> None:
    document = CII_INVOICE.replace(">20240229<", f">{text}<")
    assert data_of(document).issue_date is None


def test_data_is_extracted_even_when_the_xsd_fails() -> None:
    document = UBL_INVOICE.replace("<cac:InvoiceLine>", "<cac:Unexpected/><cac:InvoiceLine>")
    checked = check_document(document.encode())
    assert not checked.valid
    assert checked.data is not None and checked.data.number == "FA-2024-0042"


def test_missing_fields_are_none() -> None:
    document = UBL_INVOICE.replace("<cbc:BuyerReference>SERVICE-COMPTA</cbc:BuyerReference>", "")
    document = document.replace("<cac:OrderReference><cbc:ID>EJ1000042</cbc:ID></cac:OrderReference>", "")
    data = data_of(document)
    assert (data.service_code, data.engagement) == (None, None)
    assert data.number == "FA-2024-0042"



def test_credit_note_references_its_invoice() -> None:
    ubl = (Path(__file__).resolve().parents[1] / "samples" / "flows" / "ubl-creditnote-ok.xml").read_text()
    assert data_of(ubl).preceding_invoice and data_of(ubl).specification == "urn:cen.eu:en16931:2017"
    cii = CII_INVOICE.replace("</ram:SpecifiedTradeSettlementHeaderMonetarySummation>",
                              "</ram:SpecifiedTradeSettlementHeaderMonetarySummation>"
                              "<ram:InvoiceReferencedDocument>"
                              "<ram:IssuerAssignedID> FC/2024/1 </ram:IssuerAssignedID>"
                              "</ram:InvoiceReferencedDocument>")
    assert data_of(cii).preceding_invoice == "FC/2024/1"
    assert data_of(CII_INVOICE).preceding_invoice is None
