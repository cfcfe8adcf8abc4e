"""Writing XML with Jinja2 (gateway.xmlwrite): every value escaped and read back as given less what XML cannot carry,
an absent value an absent element, a name not given an error, and each document the gateway writes one element a
line, indented by depth."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from jinja2 import UndefinedError
from lxml import etree

from gateway.data.findings import Finding, dumps
from gateway.data.models import Flow, FlowState, Invoice, Verdict
from gateway.lifecycle.cdar import build_cdar, build_flow_cdar
from gateway.lifecycle.invoice_response import build_invoice_response
from gateway.lifecycle.notice import FlowNotice, StatusNotice
from gateway.lifecycle.status_xml import build_status_xml
from gateway.lifecycle.statuses import Status
from gateway.returns import build_ack, build_report
from gateway.xmlwrite import XML, xml_template, xml_text

VALUE = XML.from_string('<v a="{{ v }}">{{ v }}</v>\n')
HOSTILE = ["a < b && c > d", "R&D \"quoted\" 'single'", "]]>", "line\r\nbreak\ttab\r", "\x00\x01\x1b[31m\x7f",
           "\udc80 lone surrogate", "é 名 \U0001f9fe \u2028", "&amp; already escaped", "<!-- no comment -->",
           "<![CDATA[x]]>", '"/><injected a="', "   spaces   ", 42]


@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_a_value_is_escaped_and_read_back_as_given(value):
    """A parser reads back the value itself, carriage returns included, less only the characters XML cannot carry;
    in an attribute, it cannot close the attribute or the tag."""
    written = VALUE.render(v=value).encode()
    element = etree.fromstring(written)
    assert element.text == xml_text(value)
    assert len(element) == 0 and list(element.attrib) == ["a"]
    # a parser reads a tab or a line feed in an attribute as a space; a carriage return is written as a reference
    assert element.get("a") == xml_text(value).replace("\t", " ").replace("\n", " ")


def test_none_is_written_as_nothing_and_an_absent_value_as_an_absent_element():
    template = XML.from_string("""\
<list>
  {% if title is not none %}
  <title>{{ title }}</title>
  {% endif %}
  <note>{{ note }}</note>
</list>
""")
    assert template.render(title=None, note=None).splitlines() == ["<list>", "  <note></note>", "</list>"]
    assert template.render(title="", note=0).splitlines() == ["<list>", "  <title></title>", "  <note>0</note>",
                                                              "</list>"]


def test_a_name_the_template_was_not_given_is_an_error():
    """Never a document with a value silently left out: a misspelt or forgotten name is refused."""
    with pytest.raises(UndefinedError, match="'title' is undefined"):
        XML.from_string("<a>{{ title }}</a>").render(titel="x")
    with pytest.raises(UndefinedError, match="has no attribute 'numbr'"):
        XML.from_string("<a>{{ notice.numbr }}</a>").render(notice=NOTICE)


def test_values_known_at_import_are_the_templates_globals_escaped():
    """A value known at import is written where the template names it, escaped for an attribute as for an element;
    a template it includes is one of them."""
    inner = XML.from_string("<b>{{ value }}</b>")
    template = xml_template('<a code="{{ code }}">{{ label }}{% include inner %}</a>', code='x"<&>', label="1 < 2",
                            inner=inner)
    document = etree.fromstring(template.render(value="&"))
    assert (document.get("code"), document.text, document.findtext("b")) == ('x"<&>', "1 < 2", "&")


def test_times_are_written_in_utc():
    template = XML.from_string("<at>{{ at | xml_datetime }}</at>")
    paris = timezone(timedelta(hours=2))
    assert template.render(at=datetime(2026, 10, 20, 11, 30, 15, tzinfo=paris)) == "<at>2026-10-20T09:30:15Z</at>"
    assert template.render(at=AT) == "<at>2026-10-20T09:30:15Z</at>"


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
def test_each_document_is_one_element_a_line_indented_by_depth(name):
    """After the XML declaration, a line is one element (whole, or its start or end tag), and an element's line is
    indented more than its parent's: the macros placed at several depths (`| nested`) included."""
    written = DOCUMENTS[name]().decode()
    assert written.startswith("<?xml version='1.0' encoding='UTF-8'?>\n") and written.endswith(">\n")
    lines = written.splitlines()[1:]
    root = etree.fromstring(written.encode())
    elements = list(root.iter(etree.Element))
    # each element takes one line, or two when it has children (its start and end tags); an empty container two
    assert len(lines) == sum(2 if len(element) or (element.text or "").isspace() else 1 for element in elements)
    for line in lines:
        assert line.lstrip().startswith("<") and line.endswith(">") and line.count("<") <= 2, line

    def indent(element):
        line = lines[element.sourceline - 2]
        return len(line) - len(line.lstrip(" "))

    for element in elements[1:]:
        assert indent(element) > indent(element.getparent()), etree.tostring(element)


def test_the_report_places_flow_and_invoice_errors_each_at_its_depth():
    """The errors macro is written once, placed under the report and under each invoice: two spaces a level."""
    lines = build_report(FLOW, INVOICES, AT).decode().splitlines()
    assert lines[lines.index("  <errors>"):][:3] == ["  <errors>", "    <error>", "      <stage>rules</stage>"]
    start = lines.index("          <stage>rules</stage>") - 2
    assert lines[start:start + 3] == ["      <errors>", "        <error>", "          <stage>rules</stage>"]
