"""Factur-X (E2) flows: the CII invoice embedded in a PDF/A-3.

The PDF is what the recipient gets; the embedded XML is what is judged. The attachment is read with
pypdf (factur-x's own reader) but parsed by the gateway's safe parser, never by factur-x, whose
parser would accept a DOCTYPE.
"""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader
from pypdf.errors import LimitReachedError, PyPdfError

# Names under which Factur-X, ZUGFeRD and XRechnung embed their invoice, in order of preference.
_KNOWN_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")

logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns on every quirk of real PDFs


class PdfRefused(Exception):
    """The PDF cannot be read at all; rule says why (IRR_SYNTAX, or IRR_TAILLE_F for a bomb)."""

    def __init__(self, message: str, rule: str = "IRR_SYNTAX") -> None:
        super().__init__(message)
        self.rule = rule


def embedded_xml(pdf: bytes) -> tuple[str, bytes] | None:
    """(name, content) of the invoice XML the PDF carries, or None when it carries none."""
    try:
        attachments = {a.name: a.content for a in PdfReader(io.BytesIO(pdf)).attachment_list}
    except LimitReachedError as exc:  # pypdf stops inflating a stream at 75 MB: a PDF bomb
        raise PdfRefused(f"The PDF expands past the size a reader allows: {exc}", "IRR_TAILLE_F") from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise PdfRefused(f"Not a readable PDF: {exc}") from None
    by_lower = {name.lower(): name for name in attachments if attachments[name]}
    for known in _KNOWN_NAMES:
        if known in by_lower:
            return by_lower[known], attachments[by_lower[known]]
    others = sorted(name for lower, name in by_lower.items() if lower.endswith(".xml"))
    return (others[0], attachments[others[0]]) if others else None
