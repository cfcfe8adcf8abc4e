"""The acknowledgement of receipt, and the XML writing rules shared with the integration report.

The ack proves what the gateway received, before any check. The report repeats that receipt, so
both documents are built by the helpers here: the same text cleaning, UTC times and serialisation.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from lxml import etree

from gateway.models import Flow

ACK_NS = "urn:gateway:ack:1"

# Characters outside XML 1.0's Char production: lxml refuses them, and they do reach us through
# supplier file names (control bytes, surrogate escapes) and libxml2 messages.
_ILLEGAL_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """The value as text that XML 1.0 can carry: illegal characters are dropped."""
    return _ILLEGAL_XML_CHARS.sub("", str(value))


def xml_datetime(moment: datetime) -> str:
    """xs:dateTime in UTC with Z; naive values are UTC already (the models store them so)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
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


def append_receipt(parent: etree._Element, flow: Flow) -> None:
    """What was received: the ack's whole content, repeated at the head of the report."""
    child(parent, "flowId", flow.id)
    child(parent, "account", flow.account)
    child(parent, "originalName", flow.original_name)
    child(parent, "size", flow.size)
    child(parent, "sha256", flow.sha256)
    child(parent, "receivedAt", xml_datetime(flow.received_at))
    child(parent, "channel", flow.channel)


def serialize(document: etree._Element) -> bytes:
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def build_ack(flow: Flow) -> bytes:
    """The acknowledgement of receipt (schemas/ack.xsd), sent once the flow is stored safely."""
    document = root(ACK_NS, "ack")
    append_receipt(document, flow)
    return serialize(document)
