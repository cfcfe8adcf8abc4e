"""SVRL reports read into failed asserts, and their locations turned into line numbers."""

from __future__ import annotations

import doctest

from lxml import etree

from gateway.validate.rules import location, svrl
from gateway.validate.rules.location import line_of

REPORT = """<?xml version="1.0" encoding="UTF-8"?>
<svrl:schematron-output xmlns:svrl="http://purl.oclc.org/dsdl/svrl">
  <svrl:fired-rule context="/"/>
  <svrl:failed-assert test="x" id="BR-03" flag="fatal" location="/*:Invoice[namespace-uri()='urn:i'][1]">
    <svrl:text>[BR-03]-An Invoice shall have
       an Invoice issue date (BT-2).</svrl:text>
  </svrl:failed-assert>
  <svrl:failed-assert test="y" id="UBL-CR-001" flag="warning" location="/Q{urn:i}Invoice[1]">
    <svrl:text>[UBL-CR-001]-A UBL invoice should not include extensions</svrl:text>
  </svrl:failed-assert>
  <svrl:failed-assert test="z" id="NO-FLAG" location=""><svrl:text>t</svrl:text></svrl:failed-assert>
  <svrl:successful-report test="w" id="REPORT"><svrl:text>only a report</svrl:text></svrl:successful-report>
</svrl:schematron-output>"""

DOCUMENT = b"""<?xml version="1.0"?>
<Invoice xmlns="urn:i" xmlns:c="urn:c">
  <c:Line><c:ID>1</c:ID></c:Line>
  <c:Line>
    <c:ID schemeID="x">2</c:ID>
  </c:Line>
  <Plain xmlns=""><Inner/></Plain>
</Invoice>"""


def test_failed_asserts_keep_fatal_and_warning_apart():
    """Each failed assert gives its id, severity, whitespace-normalised message and location, in order."""
    failed = svrl.failed_asserts(REPORT)
    assert [(f.rule, f.severity) for f in failed] == [("BR-03", "fatal"), ("UBL-CR-001", "warning"),
                                                    ("NO-FLAG", "fatal")]
    assert failed[0].message == "[BR-03]-An Invoice shall have an Invoice issue date (BT-2)."
    assert failed[1].location == "/Q{urn:i}Invoice[1]"


def test_every_location_form_resolves_to_its_line():
    """CEN's *:local[namespace-uri()=...], XSLT 3's Q{ns}local and prefixed steps all find the element."""
    root = etree.fromstring(DOCUMENT)
    cen = "/*:Invoice[namespace-uri()='urn:i'][1]/*:Line[namespace-uri()='urn:c'][2]/*:ID[namespace-uri()='urn:c'][1]"
    assert line_of(root, cen) == 5
    assert line_of(root, cen + "/@schemeID") == 5  # an attribute: its element's line
    assert line_of(root, "/Q{urn:i}Invoice[1]/Q{urn:c}Line[1]") == 3
    assert line_of(root, "/i:Invoice[1]/c:Line[2]/c:ID[1]/text()[1]", {"i": "urn:i"}) == 5
    assert line_of(root, "/Q{urn:i}Invoice[1]/Plain[1]/Inner[1]") == 7  # no namespace


def test_a_location_that_cannot_be_followed_gives_no_line():
    """A wrong step, an unknown prefix or no path at all: no line rather than a wrong one."""
    root = etree.fromstring(DOCUMENT)
    assert line_of(root, "/Q{urn:i}Invoice[1]/Q{urn:c}Line[3]") is None
    assert line_of(root, "/Q{urn:other}Invoice[1]") is None
    assert line_of(root, "/x:Invoice[1]") is None
    assert line_of(root, "") is None


def test_location_doctests():
    """The examples in gateway.validate.rules.location's docstring hold."""
    assert doctest.testmod(location).failed == 0
