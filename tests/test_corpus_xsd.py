"""The real corpus: every file's XSD verdict and syntax as the manifest states them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gateway.validate import check_document

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
MANIFEST = CORPUS / "manifest.csv"


def manifest_rows() -> list:
    if not MANIFEST.is_file():
        reason = f"corpus manifest not found at {MANIFEST}"
        return [pytest.param(None, id="no-corpus", marks=pytest.mark.skip(reason=reason))]
    with MANIFEST.open(newline="", encoding="utf-8") as stream:
        return [pytest.param(row, id=row["file"]) for row in csv.DictReader(stream)]


@pytest.mark.parametrize("row", manifest_rows())
def test_xsd_verdict(row: dict[str, str]) -> None:
    checked = check_document((CORPUS / row["file"]).read_bytes())
    verdict = "valid" if checked.valid else "invalid"
    assert verdict == row["expect_xsd"], checked.findings[:3]
    if checked.valid or checked.syntax is not None:
        assert checked.syntax == row["syntax"]


def test_xsd_finding_names_line_and_path() -> None:
    """Chorus Pro names the element's path in a schema error; the gateway gives path and line too."""
    document = CORPUS / "peppol__GR__GR-base-example-correct.xml"
    if not document.is_file():
        pytest.skip(f"corpus file not found: {document}")
    first = check_document(document.read_bytes()).findings[0]
    assert (first.stage, first.line, first.path) == ("xsd", 85, "/*/cac:AdditionalDocumentReference[1]")
    assert "AdditionalDocumentReference': This element is not expected" in first.message
