"""Admissibility: files refused before XSD, each with the reform's reason code (501 Irrecevable)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.data.findings import Finding
from gateway.validate import Checked, Limits, check_document
from tests.hostile import billion_laughs, deep_nesting, with_doctype

INVOICE = """<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
         xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
         xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:ID>F-2024-001</cbc:ID>
  <cbc:IssueDate>2024-03-15</cbc:IssueDate>
  <cac:AccountingSupplierParty><cac:Party/></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party/></cac:AccountingCustomerParty>
  <cac:LegalMonetaryTotal><cbc:PayableAmount currencyID="EUR">10.00</cbc:PayableAmount></cac:LegalMonetaryTotal>
  <cac:InvoiceLine>
    <cbc:ID>1</cbc:ID>
    <cbc:LineExtensionAmount currencyID="EUR">10.00</cbc:LineExtensionAmount>
    <cac:Item><cbc:Name>Service</cbc:Name></cac:Item>
  </cac:InvoiceLine>
</Invoice>
"""
SECRET = "s3cr3t-Token-4f9a"


def refused(checked: Checked, rule: str) -> Finding:
    """The single admissibility finding of a refused document, checked to carry rule."""
    assert not checked.valid
    assert checked.syntax is None and checked.data is None
    [finding] = checked.findings
    assert (finding.stage, finding.rule, finding.severity) == ("admissibility", rule, "fatal")
    return finding


def test_the_sample_invoice_is_valid() -> None:
    """The base every refusal below is derived from passes, so refusals come from the change made."""
    checked = check_document(INVOICE.encode())
    assert checked.valid, checked.findings
    assert checked.syntax == "ubl-invoice"


@pytest.mark.parametrize("content", [b"", b" \n\t\r\n  "], ids=["zero-bytes", "whitespace"])
def test_empty(content: bytes) -> None:
    refused(check_document(content), "IRR_VIDE_F")


def test_too_large_is_refused_on_size_alone() -> None:
    content = INVOICE.encode()
    finding = refused(check_document(content, Limits(max_bytes=len(content) - 1)), "IRR_TAILLE_F")
    assert str(len(content)) in finding.message
    assert check_document(content, Limits(max_bytes=len(content))).valid


def test_too_large_is_decided_before_parsing() -> None:
    refused(check_document(b"<not xml" * 100, Limits(max_bytes=10)), "IRR_TAILLE_F")


def assert_dtd_refused(checked: Checked) -> None:
    finding = refused(checked, "IRR_SYNTAX")
    assert "DTD" in finding.message and "forbidden" in finding.message
    assert SECRET not in finding.message and "root:" not in finding.message


@pytest.mark.parametrize("target", ["file:///etc/passwd", "secret-file"])
def test_xxe_to_local_file(target: str, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    uri = secret.as_uri() if target == "secret-file" else target
    assert_dtd_refused(check_document(with_doctype(f'<!DOCTYPE Invoice [<!ENTITY x SYSTEM "{uri}">]>')))


def test_xxe_through_parameter_entity(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    doctype = f'<!DOCTYPE Invoice [<!ENTITY % x SYSTEM "{secret.as_uri()}"> %x;]>'
    assert_dtd_refused(check_document(with_doctype(doctype, body="")))


def test_external_entity_to_url() -> None:
    doctype = '<!DOCTYPE Invoice [<!ENTITY x SYSTEM "http://127.0.0.1:9/steal?data">]>'
    assert_dtd_refused(check_document(with_doctype(doctype)))


def test_external_dtd_to_url() -> None:
    assert_dtd_refused(check_document(with_doctype('<!DOCTYPE Invoice SYSTEM "http://127.0.0.1:9/x.dtd">', "")))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_billion_laughs(encoding: str) -> None:
    """Refused by the prolog scan in any encoding (libxml2 alone would only report an amplification error)."""
    assert_dtd_refused(check_document(billion_laughs(encoding)))


def test_doctype_missed_by_the_prolog_scan_is_caught_after_parsing() -> None:
    """A comment holding a start tag ends the cheap scan early; the parsed document's docinfo still tells."""
    content = with_doctype('<!-- see <Invoice> below -->\n<!DOCTYPE Invoice [<!ENTITY x "y">]>')
    assert_dtd_refused(check_document(content))


def test_deep_nesting() -> None:
    finding = refused(check_document(deep_nesting(10_000)), "IRR_SYNTAX")
    assert "nesting too deep" in finding.message and "XML_PARSE_HUGE" not in finding.message


@pytest.mark.parametrize("where", ["text", "attribute"])
def test_a_text_past_the_parsers_limit_is_too_large_not_malformed(where: str) -> None:
    """11 MB in one text or attribute, in a document well under max_bytes: libxml2 stops at 10 MB."""
    big = "x" * 11_000_000
    element = f"<cbc:Name>{big}</cbc:Name>" if where == "text" else f'<cbc:Name languageID="{big}">S</cbc:Name>'
    finding = refused(check_document(INVOICE.replace("<cbc:Name>Service</cbc:Name>", element).encode()),
                      "IRR_TAILLE_F")
    assert finding.message.startswith("XML too large to parse") and "XML_PARSE_HUGE" not in finding.message


def test_truncated() -> None:
    content = INVOICE.encode()[: len(INVOICE) // 2]
    finding = refused(check_document(content), "IRR_SYNTAX")
    assert finding.message.startswith("Not well-formed XML")
    assert finding.line == content.count(b"\n") + 1


def test_binary() -> None:
    content = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    refused(check_document(content), "IRR_SYNTAX")


def test_invalid_utf8() -> None:
    content = INVOICE.replace("Service", "Servi\udcffce").encode("utf-8", "surrogateescape")
    finding = refused(check_document(content), "IRR_SYNTAX")
    assert finding.line == 13


@pytest.mark.parametrize(
    "root",
    [
        "{urn:oasis:names:specification:ubl:schema:xsd:Order-2}Order",
        "{}Invoice",
        "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}Invoice",
    ],
)
def test_unknown_root(root: str) -> None:
    namespace, local = root[1:].split("}")
    content = f'<{local} xmlns="{namespace}"><ID>1</ID></{local}>'.encode()
    finding = refused(check_document(content), "IRR_TYPE_F")
    tag = root if namespace else local  # lxml writes a tag without namespace without braces
    assert f"root element {tag} is not" in finding.message


def test_utf16_with_bom_is_xml() -> None:
    """Encoding is not a reason to refuse: a valid invoice in UTF-16 stays valid."""
    content = INVOICE.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert content.startswith(b"\xff\xfe")
    checked = check_document(content)
    assert checked.valid, checked.findings
    assert checked.syntax == "ubl-invoice"
    assert checked.data is not None and checked.data.number == "F-2024-001"


@pytest.mark.parametrize("codec,bom", [("utf-32-le", b"\xff\xfe\0\0"), ("utf-32-be", b"")])
def test_utf32_is_refused(codec: str, bom: bytes) -> None:
    """libxml2 reads UTF-32, the business rules' parser does not: refused, never judged by one of them only."""
    content = bom + INVOICE.replace('encoding="UTF-8"', 'encoding="UTF-32"').encode(codec)
    assert "UTF-32" in refused(check_document(content), "IRR_SYNTAX").message


def test_utf16_with_bom_goes_on_to_the_xsd() -> None:
    content = INVOICE.replace('encoding="UTF-8"', 'encoding="UTF-16"').replace("<cac:Item>", "<cac:Itm>")
    content = content.replace("</cac:Item>", "</cac:Itm>").encode("utf-16")
    checked = check_document(content)
    assert not checked.valid
    assert {finding.stage for finding in checked.findings} == {"xsd"}
