"""Writing XML by template (gateway.xmlwrite): every value escaped as lxml writes it, an absent value an absent
element, and a template that could not be filled safely refused when it is compiled."""

from __future__ import annotations

from datetime import datetime

import pytest
from lxml import etree

from gateway.data.findings import Finding, dumps
from gateway.data.models import Flow, FlowState, Invoice, Verdict
from gateway.lifecycle.cdar import build_cdar, build_flow_cdar
from gateway.lifecycle.invoice_response import build_invoice_response
from gateway.lifecycle.notice import FlowNotice, StatusNotice
from gateway.lifecycle.status_xml import build_status_xml
from gateway.lifecycle.statuses import Status
from gateway.returns import build_ack, build_report
from gateway.xmlwrite import Template, xml_text

VALUE = Template("<v>{v}</v>")
HOSTILE = ["a < b && c > d", "R&D \"quoted\" 'single'", "]]>", "line\r\nbreak\ttab\r", "\x00\x01\x1b[31m\x7f",
           "\udc80 lone surrogate", "é 名 \U0001f9fe \u2028", "&amp; already escaped", "<!-- no comment -->",
           "<![CDATA[x]]>", "   spaces   ", 42]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_a_value_is_written_as_lxml_writes_it_and_read_back_as_given(value):
    """Each value is escaped as lxml escapes it (lxml is the reference), and the parser reads back the value itself,
    carriage returns included, less only the characters XML cannot carry."""
    reference = etree.Element("v")
    reference.text = xml_text(value)
    written = VALUE.document(v=value)
    assert written == etree.tostring(reference, xml_declaration=True, encoding="UTF-8") + b"\n"
    assert etree.fromstring(written).text == xml_text(value)


def test_constants_are_escaped_in_attributes_and_text():
    template = Template('<a code="{code}">\n  <b>{label}</b>\n  <c>{value}</c>\n</a>', code='x"<&>', label="1 < 2")
    document = etree.fromstring(template.document(value="&"))
    assert (document.get("code"), document.findtext("b"), document.findtext("c")) == ('x"<&>', "1 < 2", "&")


def test_an_absent_value_is_an_absent_element_and_no_parts_an_empty_container():
    item = Template("<item>{name}</item>")
    template = Template("""
        <list>
          <title>{title?}</title>
          <items>
            {items}
          </items>
          {extra?}
        </list>""")
    assert template.document(title=None, items=[], extra=None).decode().splitlines()[1:] == [
        "<list>", "  <items/>", "</list>"]
    assert template.document(title="t", items=[item.part(name="a"), item.part(name="b")],
                             extra=item.part(name="c")).decode().splitlines()[1:] == [
        "<list>", "  <title>t</title>", "  <items>", "    <item>a</item>", "    <item>b</item>", "  </items>",
        "  <item>c</item>", "</list>"]


def test_a_required_value_that_is_absent_is_an_error():
    """A required slot given None, or not given at all, is refused: never a document without its element."""
    template = Template("<a>\n  <b>{b}</b>\n  {parts}\n</a>")
    with pytest.raises(ValueError, match="No value for <b>"):
        template.document(b=None, parts=[])
    with pytest.raises(ValueError, match=r"No parts for \{parts\}"):
        template.document(b="x", parts=None)
    with pytest.raises(KeyError, match="parts"):
        template.document(b="x")


@pytest.mark.parametrize(("text", "error"), [
    ('<a code="{code}"/>', "whole text or a whole line"),  # an attribute is filled at compile time only
    ("<a>x {value}</a>", "whole text or a whole line"),
    ("<a>{value}</b>", "whole text or a whole line"),
    ("<a>\n  <b>\n</a>", "closes no <a>"),
    ("<a>\n  <b>x</b>", "<a> is never closed"),
    ("</a>", "closes no <a>"),
])
def test_a_template_that_could_break_its_documents_is_refused(text, error):
    with pytest.raises(ValueError, match=error):
        Template(text)


AT = datetime(2026, 10, 20, 9, 30, 15)
NOTICE = StatusNotice(
    message_id="I7-3", status=Status.MANDATEE, at=AT, invoice_id="I7", invoice_number="F<1>", invoice_issue_date=None,
    invoice_type_code="380", seller_siret="81234567600017", buyer_siret="21370999100011", actor="mairie",
    reason_code=None, reason=None, mandate_number="M&9", platform_siren="100000009", supplier='a"b',
    supplier_siren=None, platform_matricule="9999")
FLOW = Flow(id="F1", account="acme", original_name="x<y>&'z'.xml", size=12, sha256="ab" * 32, received_at=AT,
            state=FlowState.INTEGRE_PARTIEL, syntax="CII", findings=dumps([Finding("rules", "R1", "m & m")]))
INVOICES = [Invoice(id=f"I{seq}", flow_id="F1", seq=seq, name="i.xml", verdict=verdict,
                    findings=dumps([Finding("rules", "BR-CO-15", "<wrong>", line=3)] if seq == 2 else []),
                    packs='[{"name": "en16931", "version": "1.3", "sha256": "cd"}]')
            for seq, verdict in ((1, Verdict.ACCEPTED), (2, Verdict.REJECTED))]
DOCUMENTS = {
    "ack": lambda: build_ack(FLOW),
    "report": lambda: build_report(FLOW, INVOICES, AT),
    "empty report": lambda: build_report(FLOW, [], AT),
    "cdar": lambda: build_cdar(NOTICE),
    "cdar 213": lambda: build_cdar(NOTICE.__class__(**{**NOTICE.__dict__, "status": None, "reason_code": "REJ_SEMAN",
                                                       "reason": "BR: <x>", "supplier_siren": "812345676"})),
    "flow cdar": lambda: build_flow_cdar(FlowNotice(
        message_id="F1-l", flow_id="F1", original_name="a&b.xml", received_at=AT, at=AT,
        reasons=(("IRR_SYNTAX", "bad"), ("IRR_NOM_F", None)), supplier="acme", supplier_siren="812345676",
        platform_siren="100000009", platform_matricule=None)),
    "status": lambda: build_status_xml(NOTICE),
    "invoice response": lambda: build_invoice_response(NOTICE),
}


@pytest.mark.parametrize("name", DOCUMENTS)
def test_each_document_is_lxmls_own_pretty_printed_form(name):
    """What a template writes is what lxml writes of the same document (two spaces a level, empty containers
    closed at once): a file a supplier received before templates reads the same byte for byte."""
    written = DOCUMENTS[name]()
    again = etree.tostring(etree.fromstring(written), xml_declaration=True, encoding="UTF-8", pretty_print=True)
    assert written == again
    assert b"\n  <" in written  # indented, not one line
