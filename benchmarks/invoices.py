"""Invoices for the benchmarks: the corpus's valid invoices (samples/flows without it), each re-addressed
from the sample supplier acme to mairie-exemple and numbered per flow, so the gateway accepts and delivers it."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from lxml import etree

from gateway.judge.controls import CREDIT_NOTE_CODES
from gateway.validate import check_document
from tests.harness import CORPUS, SAMPLES, renumber

SUPPLIER, SELLER = "acme", "81234567600017"
BUYER, SERVICE = "21370999100011", "SERV-TECH"  # mairie-exemple, which needs no service nor engagement
PLACEHOLDER = b"E2E-0000000"  # each flow's own number, as long, takes its place (at most 20 characters)

_UBL = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
        "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
_RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
_CII = {"ram": _RAM, "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"}
_CII_AGREEMENT = "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/"


def _child(parent: etree._Element, tag: str, after: tuple[str, ...] = ()) -> etree._Element:
    """parent's tag element, inserted after its last child named in after (its XSD place) if missing."""
    element = parent.find(tag)
    if element is None:
        element = etree.Element(tag)
        parent.insert(max((i + 1 for i, child in enumerate(parent) if child.tag in after), default=0), element)
    return element


def _siret(element: etree._Element, siret: str) -> None:
    element.text = siret
    element.set("schemeID", "0009")


def _ubl_party(root: etree._Element, party: str, siret: str) -> None:
    entity = root.find(f"cac:{party}/cac:Party/cac:PartyLegalEntity", _UBL)  # BR-06/BR-07: always there
    cbc = f"{{{_UBL['cbc']}}}"
    _siret(_child(entity, cbc + "CompanyID", (cbc + "RegistrationName",)), siret)


def _cii_party(root: etree._Element, party: str, siret: str) -> None:
    trade_party = root.find(_CII_AGREEMENT + f"ram:{party}", _CII)
    ram = f"{{{_RAM}}}"
    organisation = _child(trade_party, ram + "SpecifiedLegalOrganization",
                          tuple(ram + name for name in ("ID", "GlobalID", "Name", "RoleCode", "Description")))
    _siret(_child(organisation, ram + "ID"), siret)


def routable(content: bytes) -> bytes:
    """The invoice sent by acme's SIRET to mairie-exemple's (service SERV-TECH where it names a service),
    numbered PLACEHOLDER."""
    root = etree.fromstring(renumber(content, PLACEHOLDER.decode()))
    if root.tag.startswith(f"{{{_CII['rsm']}}}"):
        _cii_party(root, "SellerTradeParty", SELLER)
        _cii_party(root, "BuyerTradeParty", BUYER)
        reference = root.find(_CII_AGREEMENT + "ram:BuyerReference", _CII)
    else:
        _ubl_party(root, "AccountingSupplierParty", SELLER)
        _ubl_party(root, "AccountingCustomerParty", BUYER)
        reference = root.find("cbc:BuyerReference", _UBL)
    if reference is not None:
        reference.text = SERVICE
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def candidates() -> list[tuple[str, bytes]]:
    """(source name, routable invoice) for each valid invoice of the corpus, or each sample one."""
    manifest = CORPUS / "manifest.csv"
    if manifest.exists():
        with open(manifest, newline="") as fh:
            paths = [CORPUS / row["file"] for row in csv.DictReader(fh) if row["class"] == "valid"]
    else:
        paths = sorted((SAMPLES / "flows").glob("*-ok.xml"))
    return [(path.name, routable(path.read_bytes())) for path in paths]


def admissible(content: bytes) -> bool:
    """Past its XSD, and not refused by a platform control its construction leaves open (the rules are
    judged by the raw run)."""
    checked = check_document(content)
    data = checked.data
    credit_note = data is not None and (data.syntax == "ubl-creditnote" or data.type_code in CREDIT_NOTE_CODES)
    return (checked.valid and content.count(PLACEHOLDER) == 1 and (data.issue_date or "") <= date.today().isoformat()
            and not (credit_note and not data.preceding_invoice))


def stage_flows(folder: Path, templates: list[bytes], n: int) -> list[Path]:
    """n flow files, template i % len(templates) numbered E2E-i."""
    folder.mkdir()
    paths = []
    for i in range(n):
        paths.append(folder / f"e2e-{i:07d}.xml")
        paths[-1].write_bytes(templates[i % len(templates)].replace(PLACEHOLDER, f"E2E-{i:07d}".encode()))
    return paths
