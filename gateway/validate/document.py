"""Check one XML document: admissibility, then XSD, then the routing data, on a single parse.

Admissibility failures use the reform's 501 "Irrecevable" reason codes and stop the check: a document
that is empty, too large, unsafe, not XML or of an unknown type cannot be validated any further.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.data.findings import Finding, any_fatal
from gateway.validate import safexml, syntax, xsd
from gateway.validate.extract import InvoiceData, extract

STAGE = "admissibility"
# UTF-32 (XML 1.0 appendix F): libxml2 reads it, the business rules' parser does not (Saxon takes UTF-32LE for
# garbage), so it is refused rather than judged by one parser and not the other.
_UCS4 = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\x00<", b"<\x00\x00\x00")


@dataclass(frozen=True)
class Limits:
    """Per-document limits, checked on the raw bytes so an oversized file costs no parsing."""

    max_bytes: int = 100 * 1024 * 1024


Guard = Callable[[bytes], Finding | None]  # a refusal decided on a document's bytes by the stage after this one


@dataclass
class Checked:
    """Verdict on one document."""

    syntax: str | None  # ubl-invoice | ubl-creditnote | cii; None when unknown
    findings: list[Finding]
    data: InvoiceData | None  # best effort even when the XSD fails; None if not parseable

    @property
    def valid(self) -> bool:
        return not any_fatal(self.findings)


def check_document(content: bytes, limits: Limits = Limits(), guard: Guard | None = None) -> Checked:
    """Verdict on content; never raises for bad input, every problem becomes a finding. A guard (the rules
    stage's size guards) refuses a document of a known type before its XSD, whose cost grows with what it holds."""
    refusal = _refuse_bytes(content, limits)
    if refusal is not None:
        return _refused(refusal)
    try:
        root = safexml.parse(content)
    except safexml.RefusedXML as refused:
        return _refused(_admissibility(refused.rule, refused.message, refused.line))
    if content[:4] in _UCS4:
        return _refused(_admissibility("IRR_SYNTAX", "Encoding UTF-32 is not accepted: send the invoice in UTF-8 "
                                                     "or UTF-16, the encodings every XML processor reads", 1))
    found = syntax.detect(root)
    if found is None:
        message = (
            f"Unknown document type: root element {root.tag} is not a UBL 2.1 Invoice or CreditNote"
            " nor a UN/CEFACT CII CrossIndustryInvoice"
        )
        return _refused(_admissibility("IRR_TYPE_F", message, root.sourceline))
    refusal = guard(content) if guard else None
    return Checked(found.name, [refusal] if refusal else xsd.validate(root, found), extract(root, found.name))


def _refuse_bytes(content: bytes, limits: Limits) -> Finding | None:
    """Refusals decided on the raw bytes, before spending anything on parsing."""
    if not content or content.isspace():
        return _admissibility("IRR_VIDE_F", "Empty document: no content or only whitespace")
    return size_refusal(len(content), limits)


def size_refusal(size: int, limits: Limits) -> Finding | None:
    """IRR_TAILLE_F for a document over the limit; callers holding only a size use it unread."""
    if size > limits.max_bytes:
        message = f"Document too large: {size} bytes, more than [ingest] max_file_bytes ({limits.max_bytes} bytes)"
        return _admissibility("IRR_TAILLE_F", message)
    return None


def _admissibility(rule: str, message: str, line: int | None = None) -> Finding:
    return Finding(stage=STAGE, rule=rule, message=message, line=line)


def _refused(finding: Finding) -> Checked:
    return Checked(syntax=None, findings=[finding], data=None)
