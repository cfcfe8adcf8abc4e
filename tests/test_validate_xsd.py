"""XSD stage: schema errors become findings with libxml2's message, line and element path."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from gateway.validate import check_document
from gateway.validate.syntax import catalog
from tests.test_validate_extract import CII_INVOICE, UBL_INVOICE

# Two errors libxml2 reports both of: a French date (line 7) and a word for an amount (line 33).
# (After an unexpected element libxml2 skips the rest of its parent, so that would hide the second.)
BROKEN_UBL = UBL_INVOICE.replace(">2024-03-15<", ">15/03/2024<").replace(
    ">100.00</cbc:LineExtensionAmount>", ">cent</cbc:LineExtensionAmount>"
)


def test_catalog_names_an_existing_schema_for_each_syntax() -> None:
    entries = {syntax.name: syntax for syntax in catalog().values()}
    assert sorted(entries) == ["cii", "ubl-creditnote", "ubl-invoice"]
    assert all(syntax.schema_path.is_file() for syntax in entries.values())
    assert "cii-extended-ctc-fr" in str(entries["cii"].schema_path)


def test_one_finding_per_schema_error() -> None:
    checked = check_document(BROKEN_UBL.encode())
    assert checked.syntax == "ubl-invoice"
    assert [(f.stage, f.rule, f.severity) for f in checked.findings] == [("xsd", "XSD", "fatal")] * 2
    issue_date, amount = checked.findings
    assert (issue_date.line, amount.line) == (7, 33)
    assert "IssueDate': '15/03/2024' is not a valid value" in issue_date.message
    assert issue_date.path == "/*/cbc:IssueDate"
    assert "'cent'" in amount.message
    assert amount.path == "/*/cac:InvoiceLine/cbc:LineExtensionAmount"


def test_threads_do_not_mix_their_errors() -> None:
    """Each thread validates with its own schema objects, so every result is the single-thread one."""
    documents = [doc.encode() for doc in (BROKEN_UBL, UBL_INVOICE, CII_INVOICE)] * 100
    expected = [check_document(document).findings for document in documents]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert [checked.findings for checked in pool.map(check_document, documents)] == expected
