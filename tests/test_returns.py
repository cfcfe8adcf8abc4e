"""Acks and integration reports: valid against their XSDs, right values, safe with any text."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from gateway.data.findings import Finding, dumps
from gateway.data.models import Flow, FlowState, Invoice, Verdict
from gateway.returns import assert_valid, build_ack, build_report, schema
from gateway.schemas import resource

ACK = {"a": "urn:gateway:ack:1"}
REPORT = {"r": "urn:gateway:report:1"}
RECEIVED = datetime(2024, 3, 1, 9, 30, 15)
PROCESSED = datetime(2024, 3, 1, 9, 31, 2)
SHA = hashlib.sha256(b"flow").hexdigest()


def make_flow(state: FlowState = FlowState.RECU, **fields) -> Flow:
    values = dict(
        id="F1", account="acme", original_name="batch.zip", size=1234, sha256=SHA,
        received_at=RECEIVED, state=state,
    )
    return Flow(**(values | fields))


def make_invoice(seq: int, verdict: Verdict, findings: Iterable[Finding] = (), **fields) -> Invoice:
    values = dict(
        id=f"I{seq}", flow_id="F1", seq=seq, name=f"inv{seq}.xml", number=f"N-{seq}",
        issue_date="2024-02-28", seller_siret="12345678900011", buyer_siret="98765432100017",
        recipient="city", verdict=verdict, findings=dumps(findings),
    )
    return Invoice(**(values | fields))


REJECTION = Finding("rules", "BR-CO-15", "Total with VAT is wrong", line=42, path="/Invoice/Total")
WARNING = Finding("directory", "DIR-SERVICE", "Service inactive", severity="warning")
EMPTY = Finding("admissibility", "IRR_VIDE_F", "Empty file")

CASES = {
    FlowState.INTEGRE: [make_invoice(1, Verdict.ACCEPTED, [WARNING])],
    FlowState.INTEGRE_PARTIEL: [
        make_invoice(2, Verdict.REJECTED, [REJECTION]),
        make_invoice(1, Verdict.ACCEPTED),
    ],
    FlowState.REJETE: [make_invoice(1, Verdict.REJECTED, [REJECTION])],
    FlowState.INCIDENTE: [],
}


def text(document: etree._Element, path: str, ns: dict[str, str] = REPORT) -> list[str]:
    return document.xpath(f"{path}/text()", namespaces=ns)


def test_ack_is_valid_and_carries_the_receipt() -> None:
    flow = make_flow(channel="sftp")
    xml = build_ack(flow)
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert_valid("ack", xml)
    ack = etree.fromstring(xml)
    expected = {
        "flowId": "F1", "account": "acme", "originalName": "batch.zip", "size": "1234",
        "sha256": SHA, "receivedAt": "2024-03-01T09:30:15Z", "channel": "sftp",
    }
    assert {tag: text(ack, f"/a:ack/a:{tag}", ACK) for tag in expected} == {
        tag: [value] for tag, value in expected.items()
    }


def test_times_are_written_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    flow = make_flow(FlowState.INCIDENTE, received_at=RECEIVED.replace(tzinfo=paris))
    report = etree.fromstring(build_report(flow, [], PROCESSED.replace(tzinfo=paris)))
    assert text(report, "//r:receivedAt") == ["2024-03-01T08:30:15Z"]
    assert text(report, "//r:processedAt") == ["2024-03-01T08:31:02Z"]


@pytest.mark.parametrize("state", list(CASES))
def test_report_is_valid_for_each_final_state(state: FlowState) -> None:
    xml = build_report(make_flow(state), CASES[state], PROCESSED)
    assert_valid("report", xml)
    report = etree.fromstring(xml)
    assert text(report, "/r:report/r:flow/r:state") == [state.value]
    assert text(report, "/r:report/r:flow/r:processedAt") == ["2024-03-01T09:31:02Z"]


def test_partial_report_carries_counts_invoices_in_order_and_their_errors() -> None:
    flow = make_flow(FlowState.INTEGRE_PARTIEL, syntax="cii")
    report = etree.fromstring(build_report(flow, CASES[FlowState.INTEGRE_PARTIEL], PROCESSED))
    assert text(report, "/r:report/r:flow/r:syntax") == ["cii"]
    counts = [text(report, f"//r:counts/r:{tag}") for tag in ("invoices", "accepted", "rejected")]
    assert counts == [["2"], ["1"], ["1"]]
    assert text(report, "//r:invoice/r:seq") == ["1", "2"]
    assert text(report, "//r:invoice/r:verdict") == ["accepted", "rejected"]
    rejected = report.xpath("//r:invoice[r:seq=2]", namespaces=REPORT)[0]
    assert [text(rejected, f"r:{tag}") for tag in ("invoiceId", "name", "number", "issueDate")] == [
        ["I2"], ["inv2.xml"], ["N-2"], ["2024-02-28"]
    ]
    assert [text(rejected, f"r:{tag}") for tag in ("sellerSiret", "buyerSiret", "recipient")] == [
        ["12345678900011"], ["98765432100017"], ["city"]
    ]
    error = rejected.xpath("r:errors/r:error", namespaces=REPORT)[0]
    tags = ("stage", "rule", "severity", "message", "line", "path")
    assert [text(error, f"r:{tag}") for tag in tags] == [
        ["rules"], ["BR-CO-15"], ["fatal"], ["Total with VAT is wrong"], ["42"], ["/Invoice/Total"]
    ]


def test_flow_level_errors_are_reported() -> None:
    flow = make_flow(FlowState.INCIDENTE, findings=dumps([EMPTY]))
    xml = build_report(flow, [], PROCESSED)
    assert_valid("report", xml)
    report = etree.fromstring(xml)
    assert text(report, "/r:report/r:errors/r:error/r:rule") == ["IRR_VIDE_F"]
    assert report.xpath("//r:error/r:line | //r:error/r:path", namespaces=REPORT) == []
    assert text(report, "/r:report/r:counts/r:invoices") == ["0"]


def test_missing_optional_values_are_omitted() -> None:
    bare = make_invoice(
        1, Verdict.REJECTED, [REJECTION],
        number=None, issue_date=None, seller_siret=None, buyer_siret=None, recipient=None,
    )
    xml = build_report(make_flow(FlowState.REJETE), [bare], PROCESSED)
    assert_valid("report", xml)
    invoice = etree.fromstring(xml).xpath("//r:invoice", namespaces=REPORT)[0]
    assert [etree.QName(element).localname for element in invoice] == [
        "invoiceId", "seq", "name", "verdict", "errors"
    ]


def test_hostile_text_gives_a_valid_report() -> None:
    message = "a < b && \x00c\x1b[31m é 名 \U0001f9fe \udc80 end"
    flow = make_flow(
        FlowState.REJETE, original_name="bad\x07<name>&.zip", findings=dumps([EMPTY])
    )
    finding = Finding("xsd", "XSD", message, path="/a[@b='<&>']")
    invoice = make_invoice(1, Verdict.REJECTED, [finding], name="m\x1f&\u00e9.xml")
    xml = build_report(flow, [invoice], PROCESSED)
    assert_valid("report", xml)
    report = etree.fromstring(xml)
    assert text(report, "//r:invoice//r:message") == ["a < b && c[31m é 名 \U0001f9fe  end"]
    assert text(report, "//r:invoice//r:path") == ["/a[@b='<&>']"]
    assert text(report, "//r:originalName") == ["bad<name>&.zip"]
    assert text(report, "//r:invoice/r:name") == ["m&é.xml"]
    assert_valid("ack", build_ack(flow))


def test_names_with_quotes_markup_and_carriage_returns_are_read_back_as_sent() -> None:
    """A supplier's account or file named with quotes, <, &, ]]> or a carriage return: the ack and the report stay
    valid and carry the name exactly (a carriage return is escaped, not turned into a line feed)."""
    account, name = 'Dupont&"Fils"<SARL>', "devis l'été ]]> v1\r\n.zip"
    flow = make_flow(FlowState.INTEGRE, account=account, original_name=name)
    for kind, xml, ns, prefix in (("ack", build_ack(flow), ACK, "/a:ack/a:"),
                                  ("report", build_report(flow, [], PROCESSED), REPORT, "/r:report/r:flow/r:")):
        assert_valid(kind, xml)
        document = etree.fromstring(xml)
        assert (text(document, f"{prefix}account", ns), text(document, f"{prefix}originalName", ns)) == (
            [account], [name]), kind


def test_report_refuses_a_flow_not_yet_processed() -> None:
    with pytest.raises(ValueError, match="final state"):
        build_report(make_flow(FlowState.RECU), [], PROCESSED)


def test_schema_rejects_an_unknown_state() -> None:
    report = etree.fromstring(build_report(make_flow(FlowState.INTEGRE), [], PROCESSED))
    report.xpath("//r:state", namespaces=REPORT)[0].text = "PERDU"
    with pytest.raises(ValueError, match="PERDU"):
        assert_valid("report", etree.tostring(report))


def test_assert_valid_rejects_malformed_xml() -> None:
    with pytest.raises(ValueError, match="well-formed"):
        assert_valid("ack", b"<ack")


STATUS_UPDATE = (b'<statusUpdate xmlns="urn:gateway:status:1"><invoiceId>I1</invoiceId><statusCode>05</statusCode>'
                 b'<reasonCode>JUSTIF_ABS</reasonCode></statusUpdate>')


def test_each_schema_is_its_own_file_compiled_once() -> None:
    """schema(name) is schemas/<name>.xsd, compiled once and kept: each name judges as its file on disk compiled
    afresh does (an ack valid as an ack only, a report as a report only, a status update as a status only), and
    is the same object at each call."""
    documents = {"ack": build_ack(make_flow(channel="sftp")), "status": STATUS_UPDATE,
                 "report": build_report(make_flow(FlowState.INTEGRE), CASES[FlowState.INTEGRE], PROCESSED)}
    for name in documents:
        compiled = schema(name)
        on_disk = etree.XMLSchema(etree.parse(str(resource(f"{name}.xsd"))))
        for kind, xml in documents.items():
            document = etree.fromstring(xml)
            assert (compiled.validate(document), on_disk.validate(document)) == (kind == name,) * 2, (name, kind)
        assert schema(name) is compiled
