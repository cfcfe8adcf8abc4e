"""The routing decision: find an invoice's buyer in the directory and the account that receives for it.

These are Chorus Pro's platform controls on addressing: the buyer SIRET must name an active
structure, the service code and the engagement number (EJ) must be given when the structure or
the service requires them, and the service must exist and be open today. The gateway adds one
control of its own: some recipient account must hold the SIRET, or nobody could be delivered.

Each control is a small function marked with `@rule(rule_id)` (gateway.judge.rule); it returns a message for
the supplier when the invoice breaks it, else None. `route` runs `RULES` in order. A rule marked
`halts=True` guards the ones after it (no buyer SIRET, no structure: no service to check), so
the router stops at its first finding; the other rules all run, so one report lists every fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session
from stdnum.fr import siret as siret_number

from gateway.data.findings import Finding, any_fatal
from gateway.data.reference import FRESH, Reference
from gateway.judge.rule import Rule, rule, run_rules
from gateway.validate.extract import InvoiceData

__all__ = ["RULES", "STAGE", "Route", "route"]

STAGE = "directory"


@dataclass
class Route:
    """Where an invoice goes: the structure it addresses and the account that receives it.

    `recipient` is the name of the recipient account; it is None when no account holds the SIRET.
    The invoice may be delivered only when `accepted`.
    """

    findings: list[Finding] = field(default_factory=list)
    structure: Row | None = None  # of table structure
    recipient: str | None = None

    @property
    def accepted(self) -> bool:
        return not any_fatal(self.findings)


@dataclass
class _Invoice:
    """The invoice's routing data, with the directory rows it points at looked up once, on demand."""

    session: Session
    data: InvoiceData
    today: date
    reference: Reference

    @cached_property
    def buyer_siret(self) -> str | None:
        return siret_number.compact(self.data.buyer_siret or "") or None

    @cached_property
    def service_code(self) -> str | None:
        return (self.data.service_code or "").strip() or None

    @cached_property
    def engagement(self) -> str | None:
        return (self.data.engagement or "").strip() or None

    @cached_property
    def structure(self) -> Row | None:
        return self.reference.structure(self.session, self.buyer_siret) if self.buyer_siret else None

    @cached_property
    def service(self) -> Row | None:
        if self.structure is None or self.service_code is None:
            return None
        return self.reference.service(self.session, self.structure.siret, self.service_code)

    @cached_property
    def recipient(self) -> str | None:
        """The first recipient account, by name, holding the buyer SIRET."""
        return self.reference.recipient(self.session, self.buyer_siret) if self.buyer_siret else None


@rule("DIR-BUYER-MISSING", halts=True)
def buyer_missing(invoice: _Invoice) -> str | None:
    if invoice.buyer_siret is None:
        return (
            "The buyer has no SIRET (identifier with scheme 0009): "
            "a public buyer is addressed by the SIRET of its structure."
        )
    return None


@rule("DIR-STRUCTURE-UNKNOWN", halts=True)
def structure_unknown(invoice: _Invoice) -> str | None:
    if invoice.structure is None:
        return f"Buyer SIRET {invoice.buyer_siret} is not a structure of the public directory."
    return None


@rule("DIR-STRUCTURE-INACTIVE", halts=True)
def structure_inactive(invoice: _Invoice) -> str | None:
    structure = invoice.structure
    if structure is not None and not structure.active:
        return f"Structure {structure.siret} ({structure.name}) is inactive: it accepts no invoice."
    return None


@rule("DIR-SERVICE-REQUIRED")
def service_required(invoice: _Invoice) -> str | None:
    structure = invoice.structure
    if structure is not None and structure.service_required and invoice.service_code is None:
        return (
            f"Structure {structure.siret} ({structure.name}) requires a service code "
            "(buyer reference, BT-10) and none was given."
        )
    return None


@rule("DIR-SERVICE-UNKNOWN")
def service_unknown(invoice: _Invoice) -> str | None:
    if invoice.service_code is not None and invoice.service is None:
        return f"Structure {invoice.buyer_siret} has no service {invoice.service_code!r}."
    return None


@rule("DIR-SERVICE-INACTIVE")
def service_inactive(invoice: _Invoice) -> str | None:
    service = invoice.service
    if service is None:
        return None
    today = invoice.today.isoformat()
    where = f"Service {service.code!r} of structure {service.siret}"
    if not service.active:
        return f"{where} is inactive: it accepts no invoice."
    if service.start_date and today < service.start_date:
        return f"{where} opens on {service.start_date}: it accepts no invoice before then."
    if service.end_date and today > service.end_date:
        return f"{where} closed on {service.end_date}: it accepts no invoice since."
    return None


@rule("DIR-EJ-REQUIRED")
def ej_required(invoice: _Invoice) -> str | None:
    if invoice.engagement is not None:
        return None
    if invoice.service is not None and invoice.service.ej_required:
        requirer = f"Service {invoice.service.code!r} of structure {invoice.service.siret}"
    elif invoice.structure is not None and invoice.structure.ej_required:
        requirer = f"Structure {invoice.structure.siret} ({invoice.structure.name})"
    else:
        return None
    return f"{requirer} requires an engagement number (order reference, BT-13) and none was given."


@rule("DIR-SERVICE-OR-EJ-REQUIRED")
def service_or_ej_required(invoice: _Invoice) -> str | None:
    structure = invoice.structure
    if (
        structure is not None
        and structure.service_or_ej_required
        and invoice.service_code is None
        and invoice.engagement is None
    ):
        return (
            f"Structure {structure.siret} ({structure.name}) requires a service code (BT-10) "
            "or an engagement number (BT-13) and neither was given."
        )
    return None


@rule("DIR-NO-RECIPIENT")
def no_recipient(invoice: _Invoice) -> str | None:
    if invoice.recipient is None:
        return (
            f"Structure {invoice.buyer_siret} is not connected to this gateway: "
            "no recipient account receives its invoices."
        )
    return None


RULES: tuple[Rule, ...] = (
    buyer_missing,
    structure_unknown,
    structure_inactive,
    service_required,
    service_unknown,
    service_inactive,
    ej_required,
    service_or_ej_required,
    no_recipient,
)


def route(session: Session, data: InvoiceData, today: date | None = None, reference: Reference = FRESH) -> Route:
    """Check an invoice's addressing against the directory and name the account that receives it.

    `today` (default: the current date) decides whether a service is open; the directory is read through
    `reference` (default: afresh, in session).
    """
    invoice = _Invoice(session, data, today or date.today(), reference)
    findings = run_rules(RULES, invoice, STAGE)
    return Route(findings, invoice.structure, invoice.recipient if invoice.structure else None)
