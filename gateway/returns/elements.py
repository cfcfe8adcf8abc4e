"""Element makers for the multi-namespace status formats (CDAR, UBL ApplicationResponse).

Those formats are fixed sequences of nested elements in several namespaces, so they are written as one
nested expression that reads like the document (lxml's ElementMaker) rather than as SubElement calls.
Two rules make that expression safe: an absent child (None) is simply left out, and every text goes
through ack.xml_text, so no value can make the document ill-formed. Times are written in UTC, as in
the acknowledgement and the report.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from lxml import etree
from lxml.builder import ElementMaker

from gateway.returns.ack import xml_text


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
    return moment if moment.tzinfo is None else moment.astimezone(timezone.utc).replace(tzinfo=None)
