"""Batch flows (.zip, .tar.gz) and Factur-X PDFs through the running gateway, and archive attacks."""

from __future__ import annotations

import tarfile
import zipfile

import pytest

from gateway.returns import assert_valid
from gateway.validate.archive import ArchiveLimits, ArchiveRefused, zip_members
from tests.harness import REPORT_NS, SAMPLES, drop, files, outbox, renumber, tar_gz_of, wait_report, zip_of
from tests.hostile import symlink_zip, tar_with, zip_with

SUPPLIER = "acme"
FLOWS = SAMPLES / "flows"
RECIPIENTS = ("mairie-exemple", "cc-pays-exemple", "hopital-exemple")


def _sample(name: str, number: str) -> bytes:
    return renumber((FLOWS / name).read_bytes(), number)


def _three_good_two_bad() -> dict[str, bytes]:
    return {
        "good-1.xml": _sample("ubl-invoice-ok.xml", "B-1"),
        "bad-1.xml": _sample("reject-structure-unknown.xml", "B-2"),
        "good-2.xml": _sample("cii-invoice-ok.xml", "B-3"),
        "bad-2.xml": _sample("reject-xsd.xml", "B-4"),
        "good-3.xml": _sample("ubl-invoice-ok.xml", "B-5"),
    }


def _state(report) -> str:
    return report.findtext("r:flow/r:state", namespaces=REPORT_NS)


def _delivered(root) -> list[bytes]:
    return [p.read_bytes() for account in RECIPIENTS for p in files(outbox(root, account), "")]


@pytest.mark.parametrize("name,pack", [("batch.zip", zip_of), ("batch.tar.gz", tar_gz_of)])
def test_batch_of_three_good_and_two_bad_is_partly_integrated(config_file, running, name, pack):
    root = config_file.parent
    members = _three_good_two_bad()
    drop(root, SUPPLIER, name, pack(members))
    report = wait_report(root, SUPPLIER, name)
    assert _state(report) == "INTEGRE_PARTIEL"
    verdicts = {i.findtext("r:name", namespaces=REPORT_NS): i.findtext("r:verdict", namespaces=REPORT_NS)
                for i in report.xpath("r:invoices/r:invoice", namespaces=REPORT_NS)}
    assert verdicts == {n: "accepted" if n.startswith("good") else "rejected" for n in members}
    rules = report.xpath("r:invoices/r:invoice[r:name='bad-1.xml']//r:rule/text()", namespaces=REPORT_NS)
    assert rules == ["DIR-STRUCTURE-UNKNOWN"]
    assert sorted(_delivered(root)) == sorted(c for n, c in members.items() if n.startswith("good"))
    assert_valid("report", (outbox(root, SUPPLIER) / f"{report.findtext('r:flow/r:flowId', namespaces=REPORT_NS)}"
                                                      ".report.xml").read_bytes())


def test_batch_of_only_bad_invoices_is_rejected(config_file, running):
    root = config_file.parent
    drop(root, SUPPLIER, "bad.zip", zip_of({"a.xml": _sample("reject-xsd.xml", "X-1"), "b.txt": b"hello"}))
    report = wait_report(root, SUPPLIER, "bad.zip")
    assert _state(report) == "REJETE"
    assert "IRR_TYPE_F" in report.xpath("//r:rule/text()", namespaces=REPORT_NS)


def _tar_with(kind: bytes, name: str) -> bytes:
    return tar_with(kind, name, {"ok.xml": _sample("ubl-invoice-ok.xml", "T-1")})


ATTACKS = {
    "bomb.zip": (lambda: zip_of({"bomb.xml": b"<a>" + b" " * 50_000_000 + b"</a>"}), "IRR_ARCHIVE_F"),
    "slip.zip": (lambda: zip_with(zipfile.ZipInfo("../../escape.xml"), b"<x/>"), "IRR_ARCHIVE_F"),
    "absolute.zip": (lambda: zip_with(zipfile.ZipInfo("/etc/cron.d/x.xml"), b"<x/>"), "IRR_ARCHIVE_F"),
    "symlink.zip": (symlink_zip, "IRR_ARCHIVE_F"),
    "flood.zip": (lambda: zip_of({f"m{i}.xml": b"<x/>" for i in range(1000)}), "IRR_ARCHIVE_F"),
    "symlink.tar.gz": (lambda: _tar_with(tarfile.SYMTYPE, "link.xml"), "IRR_ARCHIVE_F"),
    "device.tar.gz": (lambda: _tar_with(tarfile.CHRTYPE, "dev.xml"), "IRR_ARCHIVE_F"),
    "slip.tar.gz": (lambda: tar_gz_of({"../escape.xml": b"<x/>"}), "IRR_ARCHIVE_F"),
    "not-a-zip.zip": (lambda: b"PK\x03\x04 this is not really a zip", "IRR_SYNTAX"),
    "empty.zip": (lambda: zip_of({}), "IRR_VIDE_F"),
    "invoice.docx": (lambda: b"whatever", "IRR_TYPE_F"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_archive_attack_refuses_the_flow(config_file, running, name):
    root = config_file.parent
    build, rule = ATTACKS[name]
    drop(root, SUPPLIER, name, build())
    report = wait_report(root, SUPPLIER, name, timeout=30)
    assert _state(report) == "INCIDENTE"
    assert report.xpath("r:errors/r:error/r:rule/text()", namespaces=REPORT_NS) == [rule]
    assert _delivered(root) == []
    assert not list((root / "var").rglob("escape.xml"))


def test_a_zip_directory_too_large_for_the_members_allowed_is_refused_before_zipfile_reads_it(tmp_path):
    """zipfile holds a zip's whole central directory in memory: one past what batch_max_members can take (twice the
    members, 4 KiB an entry) is refused from its end record, whatever entry count it declares."""
    path = tmp_path / "crowd.zip"
    path.write_bytes(zip_of({f"m{i}.xml": b"" for i in range(1000)}))  # some 50 KB of directory
    with pytest.raises(ArchiveRefused) as refused:
        next(zip_members(path, ArchiveLimits(max_members=5)))
    assert refused.value.finding.rule == "IRR_ARCHIVE_F"
    assert "more than 5 members may ([ingest] batch_max_members)" in str(refused.value)
    assert len(list(zip_members(path, ArchiveLimits(max_members=1000)))) == 1000


def test_facturx_pdf_is_judged_on_its_xml_and_delivered_as_pdf(config_file, running):
    root = config_file.parent
    pdf = (FLOWS / "facturx-ok.pdf").read_bytes()
    drop(root, SUPPLIER, "facture.pdf", pdf)
    report = wait_report(root, SUPPLIER, "facture.pdf")
    assert _state(report) == "INTEGRE"
    invoice_id = report.findtext("r:invoices/r:invoice/r:invoiceId", namespaces=REPORT_NS)
    assert (outbox(root, "cc-pays-exemple") / f"{invoice_id}.pdf").read_bytes() == pdf


def test_pdf_without_xml_is_refused(config_file, running):
    root = config_file.parent
    drop(root, SUPPLIER, "plain.pdf", (FLOWS / "reject-facturx-no-xml.pdf").read_bytes())
    report = wait_report(root, SUPPLIER, "plain.pdf")
    assert _state(report) == "INCIDENTE"
    assert report.xpath("//r:rule/text()", namespaces=REPORT_NS) == ["FX-NO-XML"]


def test_facturx_pdf_inside_a_batch(config_file, running):
    root = config_file.parent
    drop(root, SUPPLIER, "mixed.zip", zip_of({"f.pdf": (FLOWS / "facturx-ok.pdf").read_bytes(),
                                              "p.pdf": (FLOWS / "reject-facturx-no-xml.pdf").read_bytes()}))
    report = wait_report(root, SUPPLIER, "mixed.zip")
    assert _state(report) == "INTEGRE_PARTIEL"
    assert report.xpath("//r:invoice[r:name='p.pdf']//r:rule/text()", namespaces=REPORT_NS) == ["FX-NO-XML"]
