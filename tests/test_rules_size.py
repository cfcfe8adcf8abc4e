"""The business rules are bounded by what they cost, not by lines: an invoice of many lines written on one line
is refused before Saxon parses it (RULES-TOO-LARGE, naming [validate] max_elements), through the gateway."""

from __future__ import annotations

from tests.harness import REPORT_NS, drop, wait_report
from tests.rules_harness import big_invoice


def test_an_invoice_on_one_line_is_still_bounded(config_file, running):
    root = config_file.parent
    many = big_invoice(40_000)  # about 2,000 invoice lines, 28,500 elements
    one_line = b" ".join(line.strip() for line in many.splitlines())
    assert one_line.count(b"\n") == 0
    drop(root, "acme", "one-line.xml", one_line)
    report = wait_report(root, "acme", "one-line.xml", timeout=60)
    assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "REJETE"
    assert report.xpath("//r:error/r:rule/text()", namespaces=REPORT_NS) == ["RULES-TOO-LARGE"]
    (message,) = report.xpath("//r:error/r:message/text()", namespaces=REPORT_NS)
    assert "elements, past [validate] max_elements = 20,000" in message
