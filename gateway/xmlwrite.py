"""Writing the gateway's XML documents: text any XML can carry, UTC times, serialisation, and element makers.

The acknowledgement and the report are written element by element (root, child, optional_child). The
multi-namespace status formats (CDAR, UBL ApplicationResponse) are fixed sequences of nested elements in several
namespaces, so they are written as one nested expression that reads like the document (lxml's ElementMaker,
maker()). Two rules make either safe: an absent value is an absent element, and every text goes through
xml_text, so no value can make a document ill-formed. Times are written in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from lxml import etree
from lxml.builder import ElementMaker

# Characters outside XML 1.0's Char production: lxml refuses them, and they do reach us through
# supplier file names (control bytes, surrogate escapes) and libxml2 messages.
_ILLEGAL_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """The value as text that XML 1.0 can carry: illegal characters are dropped."""
    return _ILLEGAL_XML_CHARS.sub("", str(value))


def xml_datetime(moment: datetime) -> str:
    """xs:dateTime in UTC with Z; naive values are UTC already (the models store them so)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "Z"


def root(namespace: str, tag: str) -> etree._Element:
    """A document element whose namespace is the default one, so children stay unprefixed."""
    return etree.Element(etree.QName(namespace, tag), nsmap={None: namespace})


def child(parent: etree._Element, tag: str, value: object = None) -> etree._Element:
    """Append <tag> in the parent's namespace, with value (if any) as cleaned text."""
    element = etree.SubElement(parent, etree.QName(etree.QName(parent).namespace, tag))
    if value is not None:
        element.text = xml_text(value)
    return element


def optional_child(parent: etree._Element, tag: str, value: object) -> None:
    """Append <tag> only for a value: absent data is an absent element, not an empty one."""
    if value is not None:
        child(parent, tag, value)


def serialize(document: etree._Element) -> bytes:
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def maker(namespace: str, nsmap: dict[str, str]) -> ElementMaker:
    """Elements in namespace, declaring nsmap's prefixes (declared once, on the document element)."""
    return ElementMaker(namespace=namespace, nsmap=nsmap, typemap={type(None): _skip, str: _append_text})


def optional(make: Callable[..., etree._Element], value: str | None, **attributes: str) -> etree._Element | None:
    """make(value) for a value, None (no element at all, not an empty one) without."""
    return None if value is None else make(value, **attributes)


def _skip(element: etree._Element, value: None) -> None:
    """An absent optional child: nothing is added."""


def _append_text(element: etree._Element, text: str) -> None:
    """Text after the element's last child, or as its text; cleaned of characters XML cannot carry."""
    text = xml_text(text)
    if len(element):
        element[-1].tail = (element[-1].tail or "") + text
    else:
        element.text = (element.text or "") + text


def utc(moment: datetime) -> datetime:
    """moment in UTC; naive values are UTC already (the models store them so)."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
