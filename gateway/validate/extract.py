"""Routing data read from an invoice (paths from the domain notes).

The XPaths are compiled once at import and evaluated on the tree already parsed for the XSD check, since
this runs on every invoice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from lxml import etree


@dataclass
class InvoiceData:
    """What the gateway needs to identify and route one invoice; any field may be missing."""

    syntax: str  # ubl-invoice | ubl-creditnote | cii
    number: str | None = None
    issue_date: str | None = None  # ISO yyyy-mm-dd
    type_code: str | None = None
    seller_siret: str | None = None
    buyer_siret: str | None = None
    service_code: str | None = None
    engagement: str | None = None
    total: str | None = None
    currency: str | None = None
    preceding_invoice: str | None = None  # BT-25, the invoice a credit note corrects
    preceding_issue_date: str | None = None  # BT-26, its issue date (ISO yyyy-mm-dd)
    specification: str | None = None  # BT-24, the specification identifier (CustomizationID)

    @property
    def amount(self) -> float | None:
        """The total as a number, for searches and sorts; None where its text is not one (a rejected invoice may
        say anything)."""
        text = (self.total or "").strip()
        return float(text) if _AMOUNT.fullmatch(text) else None


_AMOUNT = re.compile(r"-?[0-9]{1,15}([.][0-9]+)?")

NAMESPACES = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}

_UBL_PARTY_SIRET = (
    "cac:Party/cac:PartyLegalEntity/cbc:CompanyID[@schemeID='0009']",
    "cac:Party/cac:PartyIdentification/cbc:ID[@schemeID='0009']",
)
_CII_AGREEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/"
_CII_SETTLEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
_CII_PARTY_SIRET = (
    "ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0009']",
    "ram:GlobalID[@schemeID='0009']",
)


def _under(parent: str, paths: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(parent + path for path in paths)


_UBL_FIELDS = {
    "number": ("cbc:ID",),
    "issue_date": ("cbc:IssueDate",),
    "type_code": ("cbc:InvoiceTypeCode", "cbc:CreditNoteTypeCode"),
    "seller_siret": _under("cac:AccountingSupplierParty/", _UBL_PARTY_SIRET),
    "buyer_siret": _under("cac:AccountingCustomerParty/", _UBL_PARTY_SIRET),
    "service_code": ("cbc:BuyerReference",),
    "engagement": ("cac:OrderReference/cbc:ID",),
    "total": ("cac:LegalMonetaryTotal/cbc:PayableAmount",),
    "currency": ("cbc:DocumentCurrencyCode",),
    "preceding_invoice": ("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID",),
    "preceding_issue_date": ("cac:BillingReference/cac:InvoiceDocumentReference/cbc:IssueDate",),
    "specification": ("cbc:CustomizationID",),
}
_CII_FIELDS = {
    "number": ("rsm:ExchangedDocument/ram:ID",),
    "issue_date": ("rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString",),
    "type_code": ("rsm:ExchangedDocument/ram:TypeCode",),
    "seller_siret": _under(_CII_AGREEMENT + "ram:SellerTradeParty/", _CII_PARTY_SIRET),
    "buyer_siret": _under(_CII_AGREEMENT + "ram:BuyerTradeParty/", _CII_PARTY_SIRET),
    "service_code": (_CII_AGREEMENT + "ram:BuyerReference",),
    "engagement": (_CII_AGREEMENT + "ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID",),
    "total": (_CII_SETTLEMENT + "ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:DuePayableAmount",),
    "currency": (_CII_SETTLEMENT + "ram:InvoiceCurrencyCode",),
    "preceding_invoice": (_CII_SETTLEMENT + "ram:InvoiceReferencedDocument/ram:IssuerAssignedID",),
    "preceding_issue_date": (_CII_SETTLEMENT
                             + "ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime/qdt:DateTimeString",),
    "specification": ("rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",),
}

Field = tuple[etree.XPath, ...]  # alternatives, first non-empty wins


def _compile(fields: dict[str, tuple[str, ...]]) -> dict[str, Field]:
    """Each alternative as an XPath giving the text of its first match ("" when absent)."""
    return {
        name: tuple(etree.XPath(f"string(({path})[1])", namespaces=NAMESPACES) for path in paths)
        for name, paths in fields.items()
    }


_UBL = _compile(_UBL_FIELDS)
_FIELDS = {"ubl-invoice": _UBL, "ubl-creditnote": _UBL, "cii": _compile(_CII_FIELDS)}
_UBL_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:Z|[+-]\d{2}:\d{2})?")  # xs:date
_CII_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")  # udt:DateTimeString, format 102


def extract(root: etree._Element, syntax: str) -> InvoiceData:
    """Routing data of a document of a known syntax; best effort, so it works on XSD-invalid documents."""
    values = {name: _first(root, field) for name, field in _FIELDS[syntax].items()}
    for name in ("issue_date", "preceding_issue_date"):
        values[name] = _iso_date(values[name], _CII_DATE if syntax == "cii" else _UBL_DATE)
    return InvoiceData(syntax=syntax, **values)


def _first(root: etree._Element, field: Field) -> str | None:
    for xpath in field:
        value = xpath(root).strip()
        if value:
            return value
    return None


def _iso_date(value: str | None, pattern: re.Pattern[str]) -> str | None:
    """yyyy-mm-dd, or None when the text is not a real calendar date in the syntax's format."""
    match = pattern.fullmatch(value or "")
    if match is None:
        return None
    iso = "-".join(match.groups())
    try:
        date.fromisoformat(iso)
    except ValueError:
        return None
    return iso
