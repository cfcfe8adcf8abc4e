"""The business rules in the running gateway: after the XSD, before routing, named in the flow's events."""

from __future__ import annotations

from pathlib import Path

from tests.harness import REPORT_NS, drop, renumber, wait_finished, wait_report
from tests.rules_harness import CII_OK, UBL_OK, installed, with_spec_id

SUPPLIER = "acme"


def _judge(config_file: Path, name: str, content: bytes) -> tuple[str, dict]:
    """Drop content, wait for its report; the flow's state and its invoice as `gateway flows show` gives it."""
    root = config_file.parent
    drop(root, SUPPLIER, name, content)
    report = wait_report(root, SUPPLIER, name)
    flow_id = report.findtext("r:flow/r:flowId", namespaces=REPORT_NS)
    shown = wait_finished(config_file, flow_id)
    (invoice,) = shown["invoices"]
    invoice["events"] = {e["kind"]: e for e in shown["events"] if e.get("invoice_id") == invoice["id"]}
    return report.findtext("r:flow/r:state", namespaces=REPORT_NS), invoice


def test_an_invoice_breaking_en16931_is_rejected_before_routing(config_file, running):
    """Wrong totals: BR-CO-15 and BR-CO-16 reject it; the event names the pack and its hash; no routing."""
    (pack,) = installed("cen-en16931-ubl")
    content = UBL_OK.read_bytes().replace(b'<cbc:TaxInclusiveAmount currencyID="EUR">',
                                          b'<cbc:TaxInclusiveAmount currencyID="EUR">1', 1)
    state, invoice = _judge(config_file, "totals.xml", renumber(content, "RULES-001"))
    assert state == "REJETE" and invoice["verdict"] == "rejected"
    rules = [(e["rule"], e["stage"], e["severity"]) for e in invoice["errors"]]
    assert rules == [("BR-CO-15", "rules", "fatal"), ("BR-CO-16", "rules", "fatal")]
    assert all(e["line"] and e["path"] for e in invoice["errors"])
    checked = invoice["events"]["rules_checked"]
    assert checked["packs"] == [{"name": pack.name, "version": pack.version, "sha256": pack.sha256}]
    assert (checked["fired"], checked["valid"], checked["profile"]) == (["BR-CO-15", "BR-CO-16"], False, "en16931")
    assert "routed" not in invoice["events"] and "route_refused" not in invoice["events"]


def test_warnings_are_reported_and_do_not_reject(config_file, running):
    """A CopyIndicator (UBL-CR-004, a warning) is reported with the accepted invoice."""
    content = UBL_OK.read_bytes().replace(b"<cbc:IssueDate>", b"<cbc:CopyIndicator>false</cbc:CopyIndicator>"
                                                              b"\n  <cbc:IssueDate>", 1)
    state, invoice = _judge(config_file, "copy.xml", renumber(content, "RULES-002"))
    assert state == "INTEGRE" and invoice["verdict"] == "accepted"
    assert [(e["rule"], e["severity"]) for e in invoice["errors"]] == [("UBL-CR-004", "warning")]
    assert invoice["events"]["rules_checked"]["valid"] and "routed" in invoice["events"]


def test_factur_x_minimum_is_rejected_as_not_en16931(config_file, running):
    """The gateway's auto profile refuses a MINIMUM invoice for what it is."""
    content = with_spec_id(CII_OK.read_bytes(), "urn:factur-x.eu:1p0:minimum")
    state, invoice = _judge(config_file, "minimum.xml", renumber(content, "RULES-003"))
    assert state == "REJETE" and [e["rule"] for e in invoice["errors"]] == ["PROFILE-NOT-EN16931"]
    assert invoice["events"]["rules_checked"]["packs"] == []
