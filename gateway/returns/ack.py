"""The acknowledgement of receipt, and the receipt it carries, repeated at the head of the integration report.

The ack proves what the gateway received, before any check.
"""

from __future__ import annotations

from gateway.data.models import Flow
from gateway.xmlwrite import Part, Template, xml_datetime

ACK_NS = "urn:gateway:ack:1"

RECEIPT = Template("""
    <flowId>{flow_id}</flowId>
    <account>{account}</account>
    <originalName>{original_name}</originalName>
    <size>{size}</size>
    <sha256>{sha256}</sha256>
    <receivedAt>{received_at}</receivedAt>
    <channel>{channel}</channel>
""")
ACK = Template("""
    <ack xmlns="{namespace}">
      {receipt}
    </ack>
""", namespace=ACK_NS)


def receipt(flow: Flow) -> Part:
    """What was received: the ack's whole content, repeated at the head of the report."""
    return RECEIPT.part(flow_id=flow.id, account=flow.account, original_name=flow.original_name, size=flow.size,
                        sha256=flow.sha256, received_at=xml_datetime(flow.received_at), channel=flow.channel)


def build_ack(flow: Flow) -> bytes:
    """The acknowledgement of receipt (gateway/schemas/ack.xsd), sent once the flow is stored safely."""
    return ACK.document(receipt=receipt(flow))
