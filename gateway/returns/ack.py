"""The acknowledgement of receipt, and the receipt it carries, repeated at the head of the integration report.

The ack proves what the gateway received, before any check.
"""

from __future__ import annotations

from gateway.data.models import Flow
from gateway.xmlwrite import xml_template

ACK_NS = "urn:gateway:ack:1"

# What was received, of a flow: the ack's whole content, included at the head of the report's flow (and indented as
# it sits there).
RECEIPT = xml_template("""\
    <flowId>{{ flow.id }}</flowId>
    <account>{{ flow.account }}</account>
    <originalName>{{ flow.original_name }}</originalName>
    <size>{{ flow.size }}</size>
    <sha256>{{ flow.sha256 }}</sha256>
    <receivedAt>{{ flow.received_at | xml_datetime }}</receivedAt>
    <channel>{{ flow.channel }}</channel>
""")
ACK = xml_template("""\
<?xml version='1.0' encoding='UTF-8'?>
<ack xmlns="{{ namespace }}">
{% include receipt %}
</ack>
""", namespace=ACK_NS, receipt=RECEIPT)


def build_ack(flow: Flow) -> bytes:
    """The acknowledgement of receipt (gateway/schemas/ack.xsd), sent once the flow is stored safely."""
    return ACK.render(flow=flow).encode()
