"""What the gateway returns to a supplier: acknowledgement of receipt and integration report."""

from gateway.returns.ack import build_ack
from gateway.returns.report import build_report
from gateway.returns.schemas import assert_valid, schema

__all__ = ["assert_valid", "build_ack", "build_report", "schema"]
