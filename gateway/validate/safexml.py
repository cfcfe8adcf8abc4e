"""Parse untrusted XML without letting it reach files, the network, or unbounded memory.

Invoices never need a DTD, so any DOCTYPE is refused: that closes XXE (entities pointing at local files
or URLs) and entity-expansion bombs ("billion laughs") whatever libxml2's own defences are. The prolog
is scanned before parsing so such files are refused without building a tree; the parsed document's
docinfo is checked afterwards in case the scan missed one (e.g. a DOCTYPE behind a long prolog).
"""

from __future__ import annotations

import io
import re
import threading

from lxml import etree

_PROLOG_WINDOW = 64 * 1024  # bytes scanned for a DOCTYPE; real prologs are a few hundred bytes
_ROOT_START = re.compile(rb"<[^!?]")  # first start tag: the prolog ends there
_DOCTYPE = b"<!DOCTYPE"
_DEPTH_ERROR = "Excessive depth in document"
_LIMIT_ERROR = "Resource limit exceeded"
# libxml2's advice to its caller, stray line breaks and an empty column: noise in a supplier's report
_NOISE = re.compile(r",? (?:try|use) XML_PARSE_HUGE(?: option)?|\s+(?=,)|, column\s*$")

_local = threading.local()


class RefusedXML(ValueError):
    """The content is not safe, well-formed XML; rule, message and line are meant for the supplier."""

    def __init__(self, message: str, line: int | None = None, rule: str = "IRR_SYNTAX") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.rule = rule


def parse(content: bytes) -> etree._Element:
    """The root element of content, parsed once with line numbers kept; raises RefusedXML."""
    doctype_line = _doctype_line(content)
    if doctype_line is not None:
        raise _doctype_refused(doctype_line)
    try:
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as error:
        raise _refused(error) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype:
        raise _doctype_refused(None)
    return root


def root_tag(content: bytes) -> str | None:
    """The {namespace}name of the root element, reading no further than its start tag; None when the
    content is refused or not XML (parse() then says why)."""
    if _doctype_line(content) is not None:
        return None
    events = etree.iterparse(io.BytesIO(content), events=("start",), resolve_entities=False, no_network=True,
                             load_dtd=False, huge_tree=False)
    try:
        return next(events)[1].tag
    except (etree.XMLSyntaxError, StopIteration):
        return None


def _parser() -> etree.XMLParser:
    """This thread's parser: lxml parser objects must not be shared between threads."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,  # keeps libxml2's depth and text-size limits
        )
    return parser


def _doctype_line(content: bytes) -> int | None:
    """Line of a DOCTYPE in the prolog, if any; UTF-16/32 are read by dropping their NUL bytes."""
    window = content[:_PROLOG_WINDOW]
    if b"\x00" in window[:4]:
        window = window.replace(b"\x00", b"")
    root_start = _ROOT_START.search(window)
    prolog = window[: root_start.start()] if root_start else window
    at = prolog.find(_DOCTYPE)
    return None if at < 0 else prolog.count(b"\n", 0, at) + 1


def _doctype_refused(line: int | None) -> RefusedXML:
    return RefusedXML("DOCTYPE found: DTDs and entity declarations are forbidden in an invoice", line)


def _refused(error: etree.XMLSyntaxError) -> RefusedXML:
    """libxml2's own message, cleaned, prefixed in plain words; a text, attribute or name past libxml2's size
    limits (10 MB for a text) makes the document too large, not malformed."""
    message = _NOISE.sub("", error.msg).strip()
    if message.startswith(_DEPTH_ERROR):
        return RefusedXML(f"XML nesting too deep: {message}", error.lineno)
    if message.startswith(_LIMIT_ERROR):
        return RefusedXML(f"XML too large to parse: {message} (a text or attribute holds at most 10 MB)",
                          error.lineno, rule="IRR_TAILLE_F")
    return RefusedXML(f"Not well-formed XML: {message}", error.lineno)
