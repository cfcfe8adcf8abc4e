"""Routing data read from an invoice (paths from the domain notes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class InvoiceData:
    """What the gateway needs to identify and route one invoice; any field may be missing."""

    syntax: str  # ubl-invoice | ubl-creditnote | cii
    number: str | None = None
    issue_date: str | None = None  # ISO yyyy-mm-dd
    type_code: str | None = None
    seller_siret: str | None = None
    buyer_siret: str | None = None
    service_code: str | None = None
    engagement: str | None = None
    total: str | None = None
    currency: str | None = None
