"""SVRL (the Schematron validation report) read into findings.

Only svrl:failed-assert elements matter: each is one broken rule, with its id, its flag (fatal rejects
the invoice, warning is only reported), its message and the location of the element that broke it.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

SVRL = "http://purl.oclc.org/dsdl/svrl"
_FAILED = f"{{{SVRL}}}failed-assert"
_TEXT = f"{{{SVRL}}}text"
_WARNING_FLAGS = frozenset({"warning", "information", "info"})
# huge_tree: the report on a large invoice is large; it comes from the official stylesheet, not a supplier.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


@dataclass(frozen=True)
class FailedAssert:
    rule: str
    severity: str  # fatal | warning
    message: str
    location: str


def failed_asserts(report: str) -> list[FailedAssert]:
    """The failed asserts of an SVRL report, in document order; a report naming none (most of them, and long:
    one element per rule context fired) is not parsed."""
    if "failed-assert" not in report:
        return []
    root = etree.fromstring(report.encode("utf-8"), _PARSER)
    return [_failed(element) for element in root.iter(_FAILED)]


def _failed(element: etree._Element) -> FailedAssert:
    """An assert without a flag counts as fatal: Schematron's own meaning of a failed assertion."""
    flag = (element.get("flag") or "fatal").lower()
    return FailedAssert(
        rule=element.get("id") or "SCHEMATRON",
        severity="warning" if flag in _WARNING_FLAGS else "fatal",
        message=" ".join((element.findtext(_TEXT) or "").split()),
        location=element.get("location") or "",
    )
