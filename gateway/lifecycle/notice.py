"""What status messages carry, whatever their format: a notice to a supplier, a request from a recipient.

The three outgoing formats (CDAR, Peppol Invoice Response, the gateway's own XML) are built from one
StatusNotice, and both incoming formats (CDAR, the gateway's own XML) are read into StatusRequests, so the
lifecycle code never sees a format.

A notice is either about a Status the invoice took, or about the platform's rejection of the invoice at
integration: that rejection is no status the invoice lives in (it never entered its lifecycle), so it is
`status=None`, told in the reform's terms (213 Rejetée, with a REJ_* reason code). A FlowNotice tells the
flow's own lifecycle (500 Recevable, 501 Irrecevable), in CDAR only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.lifecycle.statuses import (
    EQUIVALENTS,
    PLATFORM_REJECTION,
    Equivalent,
    Status,
)

# The reform's codes whose message must give a reason (domain notes, "Flux 6").
REASON_REQUIRED_CODES = frozenset({"206", "207", "208", "210", "213"})
# The codes a platform issues while it carries the invoice (transmission phase); the others (204-212)
# are the parties' own processing statuses.
PLATFORM_CODES = frozenset({"200", "201", "202", "203", "213"})
# The flow's lifecycle: the platform's verdict on the file itself, before any invoice in it.
RECEVABLE, IRRECEVABLE = "500", "501"
FLOW_LABELS = {RECEVABLE: "Recevable", IRRECEVABLE: "Irrecevable"}


class StatusMessageError(ValueError):
    """A status message the gateway cannot act on; the message says why, for whoever sent it."""


@dataclass(frozen=True)
class StatusNotice:
    """One status change of one invoice, as the gateway tells it to the supplier.

    status is None for the platform's rejection at integration (CDAR 213); reason_code then carries the
    reform's REJ_* code. A code that needs a reason (REASON_REQUIRED_CODES) must have a reason code or text.
    """

    message_id: str  # unique id of the message, e.g. "<invoice id>-<seq>"
    status: Status | None
    at: datetime  # when the status was set; naive values are UTC
    invoice_id: str
    invoice_number: str | None
    invoice_issue_date: str | None  # ISO yyyy-mm-dd
    invoice_type_code: str | None
    seller_siret: str | None
    buyer_siret: str | None
    actor: str  # who set it: "gateway", an account name, "operator"
    reason_code: str | None
    reason: str | None  # free text / comment
    mandate_number: str | None
    platform_siren: str  # the gateway operator's SIREN, sender of CDAR messages
    supplier: str | None = None  # the account told: a CDAR's recipient where the invoice names no seller
    supplier_siren: str | None = None  # the SIREN of that account's first SIRET
    platform_matricule: str | None = None  # the gateway's registration number as a platform (scheme 0238)

    def __post_init__(self) -> None:
        if self.cdar_code in REASON_REQUIRED_CODES and not (self.reason_code or self.reason):
            raise ValueError(f"a notice with code {self.cdar_code} needs a reason code or text")

    @property
    def equivalent(self) -> Equivalent:
        """The status in the reform's and Peppol's vocabularies."""
        return PLATFORM_REJECTION if self.status is None else EQUIVALENTS[self.status]

    @property
    def cdar_code(self) -> str:
        return self.equivalent.cdar

    @property
    def platform_rejected(self) -> bool:
        return self.status is None

    @property
    def issued_by_platform(self) -> bool:
        """Whether the platform issued the status while carrying the invoice, rather than a party."""
        return self.cdar_code in PLATFORM_CODES

    @property
    def invoice_reference(self) -> str:
        """How the supplier knows the invoice: its number, or the gateway's id for one read without a number."""
        return self.invoice_number or self.invoice_id

    @property
    def seller_siren(self) -> str | None:
        return siren(self.seller_siret)

    @property
    def buyer_siren(self) -> str | None:
        return siren(self.buyer_siret)


@dataclass(frozen=True)
class FlowNotice:
    """A flow's own lifecycle as the reform tells the account that deposited it: 500 Recevable, or 501
    Irrecevable with the reasons that refused it, each a reform code (IRR_*) and a text."""

    message_id: str
    flow_id: str
    original_name: str
    received_at: datetime  # naive values are UTC
    at: datetime  # when the flow was judged
    reasons: tuple[tuple[str, str], ...]  # none: Recevable
    supplier: str  # the depositing account, and the SIREN of its first SIRET (None if it holds none)
    supplier_siren: str | None
    platform_siren: str
    platform_matricule: str | None = None

    @property
    def cdar_code(self) -> str:
        return IRRECEVABLE if self.reasons else RECEVABLE


@dataclass(frozen=True)
class StatusRequest:
    """What a recipient asks, read from a file it dropped: an invoice to move to a status.

    The gateway's own format names the invoice by the gateway's id; CDAR by number, issue date and
    seller SIREN (first 9 digits, also when the message gave a SIRET).
    """

    status: Status
    invoice_id: str | None
    invoice_number: str | None
    invoice_issue_date: str | None  # ISO yyyy-mm-dd
    seller_siren: str | None
    reason_code: str | None
    reason: str | None
    mandate_number: str | None


def siren(siret: str | None) -> str | None:
    """The SIREN (9 digits) a SIRET starts with; None stays None."""
    return siret[:9] if siret else None
