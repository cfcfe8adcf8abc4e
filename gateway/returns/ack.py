"""The acknowledgement of receipt, and the receipt it carries, repeated at the head of the integration report.

The ack proves what the gateway received, before any check.
"""

from __future__ import annotations

from lxml import etree

from gateway.models import Flow
from gateway.xmlwrite import child, root, serialize, xml_datetime

ACK_NS = "urn:gateway:ack:1"


def append_receipt(parent: etree._Element, flow: Flow) -> None:
    """What was received: the ack's whole content, repeated at the head of the report."""
    child(parent, "flowId", flow.id)
    child(parent, "account", flow.account)
    child(parent, "originalName", flow.original_name)
    child(parent, "size", flow.size)
    child(parent, "sha256", flow.sha256)
    child(parent, "receivedAt", xml_datetime(flow.received_at))
    child(parent, "channel", flow.channel)


def build_ack(flow: Flow) -> bytes:
    """The acknowledgement of receipt (gateway/schemas/ack.xsd), sent once the flow is stored safely."""
    document = root(ACK_NS, "ack")
    append_receipt(document, flow)
    return serialize(document)
