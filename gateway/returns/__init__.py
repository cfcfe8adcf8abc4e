"""What the gateway returns to a supplier for each flow: the acknowledgement of receipt and the integration report
(the lifecycle's own messages, CDAR, Peppol Invoice Response and status XML, are gateway.lifecycle's)."""

from gateway.returns.ack import build_ack
from gateway.returns.report import build_report
from gateway.returns.schemas import assert_valid, schema

__all__ = ["assert_valid", "build_ack", "build_report", "schema"]
