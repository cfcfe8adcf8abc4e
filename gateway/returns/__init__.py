"""What the gateway returns to a supplier: acknowledgement of receipt, integration report, the flow's
lifecycle (CDAR 500/501) and status messages (CDAR, Peppol Invoice Response, its own status XML), and how it
reads a recipient's status messages."""

from gateway.returns.ack import build_ack
from gateway.returns.cdar import build_cdar, build_flow_cdar, parse_cdar
from gateway.returns.invoice_response import build_invoice_response
from gateway.returns.notice import FlowNotice, StatusMessageError, StatusNotice, StatusRequest
from gateway.returns.report import build_report
from gateway.returns.schemas import assert_valid, schema
from gateway.returns.status_xml import build_status_xml, parse_status_xml

__all__ = [
    "FlowNotice",
    "StatusMessageError",
    "StatusNotice",
    "StatusRequest",
    "assert_valid",
    "build_ack",
    "build_cdar",
    "build_flow_cdar",
    "build_invoice_response",
    "build_report",
    "build_status_xml",
    "parse_cdar",
    "parse_status_xml",
    "schema",
]
