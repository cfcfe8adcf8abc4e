"""End to end: files dropped in a zone on disk, the running gateway, files appearing in out/ zones."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.returns import assert_valid
from tests.harness import (
    ACK_NS,
    REPORT_NS,
    SAMPLES,
    ack_for_name,
    drop,
    files,
    inbox,
    outbox,
    renumber,
    wait_for,
    wait_report,
)

SUPPLIER, RECIPIENT = "acme", "mairie-exemple"


def _root(config_file: Path) -> Path:
    return config_file.parent


def _state(report) -> str:
    return report.findtext("r:flow/r:state", namespaces=REPORT_NS)


def _rules(report) -> list[str]:
    return report.xpath("//r:error/r:rule/text()", namespaces=REPORT_NS)


def _check_returns(root: Path) -> None:
    for path in files(outbox(root, SUPPLIER), ".ack.xml"):
        assert_valid("ack", path.read_bytes())
    for path in files(outbox(root, SUPPLIER), ".report.xml"):
        assert_valid("report", path.read_bytes())


@pytest.mark.parametrize("sample", ["ubl-invoice-ok.xml", "cii-invoice-ok.xml", "ubl-creditnote-ok.xml"])
def test_valid_invoice_reaches_recipient_byte_for_byte(config_file, running, sample):
    root = _root(config_file)
    content = (SAMPLES / "flows" / sample).read_bytes()
    dropped = drop(root, SUPPLIER, sample, content)
    report = wait_report(root, SUPPLIER, sample)
    assert not dropped.exists()
    assert _state(report) == "INTEGRE", _rules(report)
    invoice_id = report.findtext("r:invoices/r:invoice/r:invoiceId", namespaces=REPORT_NS)
    delivered = outbox(root, report.findtext("r:invoices/r:invoice/r:recipient", namespaces=REPORT_NS))
    assert (delivered / f"{invoice_id}.xml").read_bytes() == content
    packs = report.xpath("r:invoices/r:invoice/r:rulePacks/r:pack", namespaces=REPORT_NS)
    assert packs and all(len(p.findtext("r:sha256", namespaces=REPORT_NS)) == 64 for p in packs)
    assert packs[0].findtext("r:name", namespaces=REPORT_NS).startswith("cen-en16931")
    _check_returns(root)


def test_acknowledgement_describes_the_file(config_file, running):
    root = _root(config_file)
    content = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
    drop(root, SUPPLIER, "mine.xml", content)
    ack = wait_for(lambda: ack_for_name(root, SUPPLIER, "mine.xml"), what="acknowledgement")
    import hashlib
    assert ack.findtext("a:sha256", namespaces=ACK_NS) == hashlib.sha256(content).hexdigest()
    assert ack.findtext("a:size", namespaces=ACK_NS) == str(len(content))
    assert ack.findtext("a:account", namespaces=ACK_NS) == SUPPLIER


def test_same_bytes_twice_is_a_duplicate_flow(config_file, running):
    root = _root(config_file)
    content = renumber((SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes(), "DUP-1")
    drop(root, SUPPLIER, "first.xml", content)
    assert _state(wait_report(root, SUPPLIER, "first.xml")) == "INTEGRE"
    drop(root, SUPPLIER, "again.xml", content)
    report = wait_report(root, SUPPLIER, "again.xml")
    assert _state(report) == "REJETE"
    assert _rules(report) == ["FLOW-DUPLICATE"]
    assert sum(p.read_bytes() == content for p in files(outbox(root, RECIPIENT), ".xml")) == 1


def test_files_under_temporary_names_are_left_alone(config_file, running):
    root = _root(config_file)
    content = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
    waiting = [inbox(root, SUPPLIER) / name for name in ("up.xml.part", "x.tmp", "y.filepart", ".hidden.xml")]
    for path in waiting:
        path.write_bytes(content)
    drop(root, SUPPLIER, "marker.xml", renumber(content, "MARKER-1"))
    wait_report(root, SUPPLIER, "marker.xml")
    assert all(p.exists() for p in waiting)
    assert ack_for_name(root, SUPPLIER, "up.xml.part") is None


def test_file_present_before_start_is_taken(config_file, app):
    from gateway.engine.runner import Gateway

    root = _root(config_file)
    drop(root, SUPPLIER, "early.xml", (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes())
    gateway = Gateway(app)
    gateway.start()
    try:
        assert _state(wait_report(root, SUPPLIER, "early.xml")) == "INTEGRE"
    finally:
        gateway.stop()


REJECTIONS = {
    "reject-buyer-missing.xml": "DIR-BUYER-MISSING",
    "reject-ej-required.xml": "DIR-EJ-REQUIRED",
    "reject-no-recipient.xml": "DIR-NO-RECIPIENT",
    "reject-service-inactive.xml": "DIR-SERVICE-INACTIVE",
    "reject-service-or-ej-required.xml": "DIR-SERVICE-OR-EJ-REQUIRED",
    "reject-service-required.xml": "DIR-SERVICE-REQUIRED",
    "reject-service-unknown.xml": "DIR-SERVICE-UNKNOWN",
    "reject-structure-inactive.xml": "DIR-STRUCTURE-INACTIVE",
    "reject-structure-unknown.xml": "DIR-STRUCTURE-UNKNOWN",
    "reject-xsd.xml": "XSD",
}


def test_every_reject_sample_is_listed():
    assert {p.name for p in (SAMPLES / "flows").glob("reject-*.xml")} == set(REJECTIONS) | {"reject-not-xml.xml"}


@pytest.mark.parametrize("sample", sorted(REJECTIONS))
def test_reject_sample_is_rejected_for_its_reason(config_file, running, sample):
    root = _root(config_file)
    drop(root, SUPPLIER, sample, (SAMPLES / "flows" / sample).read_bytes())
    report = wait_report(root, SUPPLIER, sample)
    assert _state(report) == "REJETE"
    assert REJECTIONS[sample] in _rules(report)
    assert report.findtext("r:invoices/r:invoice/r:verdict", namespaces=REPORT_NS) == "rejected"
    assert all(not files(outbox(root, account), ".xml") for account in ("mairie-exemple", "hopital-exemple",
                                                                        "departement-exemple", "universite-exemple"))
    _check_returns(root)


def test_not_xml_sample_is_refused_whole(config_file, running):
    root = _root(config_file)
    drop(root, SUPPLIER, "reject-not-xml.xml", (SAMPLES / "flows" / "reject-not-xml.xml").read_bytes())
    report = wait_report(root, SUPPLIER, "reject-not-xml.xml")
    assert _state(report) == "INCIDENTE" and _rules(report) == ["IRR_SYNTAX"]
