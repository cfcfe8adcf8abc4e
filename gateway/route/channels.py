"""Delivery channels: how an accepted invoice reaches its recipient.

A channel is single-shot: `deliver` either puts the file at its destination or raises; retrying is
the queue's business. Names are deterministic per invoice, so delivering again after a crash
replaces the same file instead of adding a second copy.
"""

from __future__ import annotations

from typing import Protocol

from gateway.zones import Zones


class DeliveryChannel(Protocol):
    def deliver(self, destination: str, file_name: str, content: bytes) -> str:
        """Deliver content; return where it went, for the timeline."""


class ZoneChannel:
    """Delivery into the recipient account's out/ zone on this gateway."""

    def __init__(self, zones: Zones) -> None:
        self.zones = zones

    def deliver(self, destination: str, file_name: str, content: bytes) -> str:
        path = self.zones.publish(destination, file_name, content)
        return f"zone:{destination}/out/{path.name}"
