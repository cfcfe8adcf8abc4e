"""Error output is bounded: a stage keeps the first 200 findings of a document and says how many more each rule
had, and a document too large for that (200,000 unknown attributes: libxml2 would keep 400,000 schema errors) is
refused before its XSD. Through a running `gateway run`, whose memory is sampled from /proc meanwhile: bounded
report, rows and log lines, and the gateway under 500 MB."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from gateway.data.findings import LIMIT, Finding, cap
from gateway.data.models import Event, Invoice
from gateway.validate import syntax, xsd
from gateway.validate.document import check_document
from gateway.validate.rules import Guards
from tests.harness import (
    REPORT_NS,
    SAMPLES,
    GatewayProcess,
    drop,
    load_samples,
    outbox,
    renumber,
    rows,
    wait_for,
    wait_report,
    write_config,
)
from tests.probes import RssSampler

MB = 1 << 20
VALID = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
GUARDS = Guards(max_bytes=20 * MB, max_elements=20_000, max_attributes=20_000)  # config.toml's


def with_bad_attributes(number: str, count: int) -> bytes:
    """The valid sample under number, each of its two cbc:Note carrying count attributes its schema does not
    know: one schema error each."""
    attributes = " ".join(f'a{n}="x"' for n in range(count))
    return renumber(VALID, number).replace(b"<cbc:Note>", f"<cbc:Note {attributes}>".encode())


def _findings(stage: str, rule: str, count: int, severity: str = "fatal") -> list[Finding]:
    return [Finding(stage, rule, f"{rule} {n}", severity) for n in range(count)]


def test_a_stage_keeps_its_first_findings_then_one_per_rule_left_out():
    xsd_findings = _findings("xsd", "XSD", LIMIT + 50)
    # rules: the first 200 kept, then 30 warnings of W and 20 of F, one of F fatal among warnings
    rules = (_findings("rules", "BR-01", LIMIT) + _findings("rules", "W", 30, "warning")
             + _findings("rules", "F", 19, "warning") + _findings("rules", "F", 1))
    kept = cap([*xsd_findings, Finding("flow", "ONE", "one"), *rules])
    assert kept[:LIMIT] == xsd_findings[:LIMIT] and kept[LIMIT].rule == "ONE"
    assert kept[LIMIT + 1:2 * LIMIT + 1] == rules[:LIMIT]
    summaries = kept[2 * LIMIT + 1:]
    assert [(f.stage, f.rule, f.severity) for f in summaries] == [
        ("xsd", "XSD", "fatal"), ("rules", "W", "warning"), ("rules", "F", "fatal")]
    assert "and 50 more findings of rule XSD" in summaries[0].message
    assert "and 20 more findings of rule F" in summaries[2].message and f"at most {LIMIT}" in summaries[2].message
    assert cap(xsd_findings[:LIMIT]) == xsd_findings[:LIMIT]  # at the limit: nothing summarised


def test_findings_left_out_are_never_held():
    """cap() reads lazily: 300,000 findings cost it what the 200 kept cost, not what all of them would."""
    tracemalloc.start()
    try:
        kept = cap(Finding("xsd", "XSD", f"error {n} " + "x" * 100) for n in range(300_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(kept) == LIMIT + 1 and "299,800 more" in kept[-1].message
    assert peak < 2 * MB, peak


def test_schema_errors_are_capped_and_their_log_freed():
    checked = check_document(with_bad_attributes("CAP-U1", 3_000), guard=GUARDS.refusal)
    assert len(checked.findings) == LIMIT + 1 and not checked.valid
    assert all(f.rule == "XSD" and f.line and f.path for f in checked.findings[:LIMIT])
    assert "and 5,800 more findings of rule XSD" in checked.findings[-1].message
    ubl = next(entry for entry in syntax.catalog().values() if entry.name == "ubl-invoice")
    assert len(xsd._schema(ubl.schema_path).error_log) == 0  # not held until this thread's next document


def test_too_many_attributes_are_refused_before_the_xsd():
    (finding,) = check_document(with_bad_attributes("CAP-U2", 20_000), guard=GUARDS.refusal).findings
    assert finding.rule == "RULES-TOO-LARGE" and finding.fatal
    assert "attributes, past [validate] max_attributes = 20,000" in finding.message


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    """Both invoices through one `gateway run`, its RSS sampled meanwhile."""
    root = tmp_path_factory.mktemp("cap")
    config = write_config(root, {"validate": {"processes": 1}})
    load_samples(config)
    gateway = GatewayProcess(config)
    gateway.start()
    sampler = RssSampler(gateway.proc.pid).start()
    try:
        wait_for(gateway.started, 120, "the gateway's start")
        drop(root, "acme", "bad-200000.xml", with_bad_attributes("CAP-1", 200_000))
        drop(root, "acme", "bad-9000.xml", with_bad_attributes("CAP-2", 9_000))
        reports = {name: wait_report(root, "acme", name, timeout=180) for name in ("bad-200000.xml", "bad-9000.xml")}
    finally:
        peaks = sampler.stop()
        assert gateway.stop() == 0
    return root, config, reports, peaks


def _errors(report) -> list[tuple[str, str]]:
    return [(e.findtext("r:rule", namespaces=REPORT_NS), e.findtext("r:message", namespaces=REPORT_NS))
            for e in report.iterfind(".//r:invoice/r:errors/r:error", REPORT_NS)]


def test_200000_bad_attributes_are_refused_with_the_limit_named(capped):
    _root, _config, reports, _peaks = capped
    report = reports["bad-200000.xml"]
    assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "REJETE"
    ((rule, message),) = _errors(report)
    assert rule == "RULES-TOO-LARGE" and "past [validate] max_attributes = 20,000" in message


def test_18000_schema_errors_give_200_and_a_count(capped):
    _root, _config, reports, _peaks = capped
    errors = _errors(reports["bad-9000.xml"])
    assert len(errors) == LIMIT + 1 and {rule for rule, _ in errors} == {"XSD"}
    assert "and 17,800 more findings of rule XSD" in errors[-1][1]


def test_reports_rows_and_log_lines_stay_small(capped):
    root, config, _reports, _peaks = capped
    reports = sorted(p.stat().st_size for p in outbox(root, "acme").glob("*.report.xml"))
    print("report sizes:", reports)
    assert reports and reports[-1] < 256 * 1024  # was 148 MB
    findings = [len(invoice.findings) for invoice in rows(config, Invoice)]
    details = [len(event.detail) for event in rows(config, Event)]
    print("largest invoice findings:", max(findings), "largest event:", max(details))
    assert max(findings) < 256 * 1024 and max(details) < 16 * 1024  # was 215 MB in the database
    lines = (root / "gateway.log").read_bytes().splitlines()
    assert max(map(len, lines)) < 16 * 1024  # was a 2.8 MB line
    assert json.loads(max(lines, key=len))  # whole JSON lines, not cut


def test_the_gateway_stays_under_500_mb(capped):
    _root, _config, _reports, peaks = capped
    print("peak RSS:", {label: f"{rss / MB:.0f} MB" for label, rss in peaks.items()})
    assert peaks["gateway"] < 500 * MB  # was 1.66 GB
