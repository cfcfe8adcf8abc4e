"""Delivery channels: how an accepted invoice reaches its recipient.

A channel is single-shot: `deliver` either puts the file at its destination or raises; retrying across
runs is the delivery queue's business. Names are deterministic per invoice, so delivering again after a
crash replaces the same file instead of adding a second copy.

    DeliveryError
    ├── TransientDeliveryError   network down, timeout, disk full: retried later
    └── PermanentDeliveryError   authentication refused, unknown host key, missing path: an operator acts
"""

from __future__ import annotations

from typing import Protocol

from gateway.zones import Zones


class DeliveryError(Exception):
    """A delivery failed."""


class TransientDeliveryError(DeliveryError):
    """A delivery failed for a reason that may pass: try again later."""


class PermanentDeliveryError(DeliveryError):
    """A delivery failed for a reason that will not pass by itself: dead-letter it."""


class DeliveryChannel(Protocol):
    def deliver(self, destination: str, file_name: str, content: bytes) -> str:
        """Deliver content; return where it went, for the timeline."""


class ZoneChannel:
    """Delivery into the recipient account's out/ zone on this gateway."""

    def __init__(self, zones: Zones) -> None:
        self.zones = zones

    def deliver(self, destination: str, file_name: str, content: bytes) -> str:
        try:
            path = self.zones.publish(destination, file_name, content)
        except OSError as exc:  # disk full, permissions: the operator may fix it, retry meanwhile
            raise TransientDeliveryError(f"cannot write into zone {destination}: {exc.strerror}") from exc
        return f"zone:{destination}/out/{path.name}"
