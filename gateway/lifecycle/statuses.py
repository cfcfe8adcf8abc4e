"""The invoice statuses (Chorus Pro's numeric codes), which moves between them are legal, and their
equivalents in the reform's CDAR codes and in Peppol Invoice Response codes.

Main path, forward only and each step after MISE_A_DISPOSITION optional: DEPOSEE -> EN_COURS_ACHEMINEMENT
-> MISE_A_DISPOSITION -> SERVICE_FAIT -> MANDATEE -> MISE_A_DISPOSITION_COMPTABLE -> COMPTABILISEE -> MISE_EN_PAIEMENT.
Side paths set by the recipient once the invoice is in its hands: A_RECYCLER (wrong addressing: the
supplier sends it again under the same number), SUSPENDUE (documents missing) -> COMPLETEE (the supplier
sent them; the invoice then goes on as if just made available), REJETEE. REJETEE, MISE_EN_PAIEMENT and
A_RECYCLER end an invoice's life (an A_RECYCLER invoice lives on as the new invoice the supplier sends).

The reform withdrew recycling (Chorus Pro's external specification, §2.4.2: an invoice's content is
intangible once issued): unless `[lifecycle] recycling` is true, a recipient asking for A_RECYCLER makes the
invoice REJETEE with its addressing reason (`requested`), and the supplier issues a new invoice under a new
number. TRANSITIONS keeps the historic table; A_RECYCLER invoices made before stay what they are.

The domain notes leave the exact matrix open; the choices made here: A_RECYCLER only before the
recipient has acted on the invoice (made available or completed); SUSPENDUE up to SERVICE_FAIT; REJETEE
until the invoice is mandated.

EQUIVALENTS follows the reform's correspondence table (Chorus Pro document, table 8): the public buyer's
SERVICE_FAIT, MANDATEE, MISE_A_DISPOSITION_COMPTABLE and COMPTABILISEE are all 204 Prise en charge for the
supplier, each with a comment naming the precise status; their Peppol code is IP (in process), as 204's is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    DEPOSEE = "01"
    EN_COURS_ACHEMINEMENT = "02"
    MISE_A_DISPOSITION = "03"
    A_RECYCLER = "04"
    REJETEE = "05"
    SUSPENDUE = "06"
    SERVICE_FAIT = "07"
    MANDATEE = "08"
    MISE_A_DISPOSITION_COMPTABLE = "09"
    COMPTABILISEE = "10"
    MISE_EN_PAIEMENT = "11"
    COMPLETEE = "12"

    @classmethod
    def parse(cls, text: str) -> Status:
        """A status from its code ("07", "7") or its name ("SERVICE_FAIT", "service_fait")."""
        text = text.strip()
        if text.isdigit():
            return cls(text.zfill(2))
        return cls[text.upper()]


MAIN_PATH = (Status.DEPOSEE, Status.EN_COURS_ACHEMINEMENT, Status.MISE_A_DISPOSITION, Status.SERVICE_FAIT,
             Status.MANDATEE, Status.MISE_A_DISPOSITION_COMPTABLE, Status.COMPTABILISEE, Status.MISE_EN_PAIEMENT)
TERMINAL = frozenset({Status.REJETEE, Status.MISE_EN_PAIEMENT, Status.A_RECYCLER})
REASON_REQUIRED = frozenset({Status.REJETEE, Status.SUSPENDUE, Status.A_RECYCLER})
SET_BY_GATEWAY = frozenset({Status.DEPOSEE, Status.EN_COURS_ACHEMINEMENT, Status.MISE_A_DISPOSITION,
                            Status.COMPLETEE})

_RECYCLABLE_FROM = frozenset({Status.MISE_A_DISPOSITION, Status.COMPLETEE})
_SUSPENDABLE_FROM = frozenset({Status.MISE_A_DISPOSITION, Status.COMPLETEE, Status.SERVICE_FAIT})
_REJECTABLE_FROM = frozenset({Status.MISE_A_DISPOSITION, Status.COMPLETEE, Status.SUSPENDUE, Status.SERVICE_FAIT})


def _forward(status: Status) -> set[Status]:
    """Main-path statuses after status; nobody acts on an invoice before it is made available, and a
    COMPLETEE invoice stands where MISE_A_DISPOSITION does."""
    if status in (Status.DEPOSEE, Status.EN_COURS_ACHEMINEMENT):
        return set(MAIN_PATH[MAIN_PATH.index(status) + 1:MAIN_PATH.index(Status.MISE_A_DISPOSITION) + 1])
    at = MAIN_PATH.index(Status.MISE_A_DISPOSITION if status is Status.COMPLETEE else status)
    return set(MAIN_PATH[at + 1:])


def _allowed(status: Status) -> frozenset[Status]:
    if status in TERMINAL:
        return frozenset()
    if status is Status.SUSPENDUE:
        return frozenset({Status.COMPLETEE, Status.REJETEE})
    allowed = _forward(status)
    for side, sources in ((Status.A_RECYCLER, _RECYCLABLE_FROM), (Status.SUSPENDUE, _SUSPENDABLE_FROM),
                          (Status.REJETEE, _REJECTABLE_FROM)):
        if status in sources:
            allowed.add(side)
    return frozenset(allowed)


TRANSITIONS: dict[Status, frozenset[Status]] = {status: _allowed(status) for status in Status}


def can_move(current: Status, new: Status) -> bool:
    return new in TRANSITIONS[current]


def answers(current: Status, *, recycling: bool) -> list[Status]:
    """The statuses a recipient may set on an invoice at current (those the gateway sets are not its own;
    A_RECYCLER only where recycling is kept), in code order."""
    withdrawn = set() if recycling else {Status.A_RECYCLER}
    return sorted(TRANSITIONS[current] - SET_BY_GATEWAY - withdrawn)


def requested(status: Status, *, recycling: bool) -> Status:
    """The status a request for status sets: A_RECYCLER is REJETEE where recycling is withdrawn."""
    return Status.REJETEE if status is Status.A_RECYCLER and not recycling else status


@dataclass(frozen=True)
class Equivalent:
    cdar: str  # reform lifecycle code (ProcessConditionCode)
    cdar_label: str
    peppol: str  # Peppol Invoice Response code (UNCL 4343 subset)
    comment: str | None = None  # what the supplier is told beside a code several statuses share


_TAKEN_IN_HAND = "204", "Prise en charge", "IP"
EQUIVALENTS: dict[Status, Equivalent] = {
    Status.DEPOSEE: Equivalent("200", "Déposée", "AB"),
    Status.EN_COURS_ACHEMINEMENT: Equivalent("201", "Émise", "AB"),
    Status.MISE_A_DISPOSITION: Equivalent("203", "Mise à disposition", "AB"),
    Status.A_RECYCLER: Equivalent("210", "Refusée", "RE"),
    Status.REJETEE: Equivalent("210", "Refusée", "RE"),
    Status.SUSPENDUE: Equivalent("208", "Suspendue", "UQ"),
    Status.SERVICE_FAIT: Equivalent(*_TAKEN_IN_HAND, "Le destinataire public a réalisé le service fait"),
    Status.MANDATEE: Equivalent(*_TAKEN_IN_HAND, "Le destinataire public a mandaté la facture"),
    Status.MISE_A_DISPOSITION_COMPTABLE: Equivalent(
        *_TAKEN_IN_HAND, "Le destinataire public a mis la facture à disposition du comptable public"),
    Status.COMPTABILISEE: Equivalent(*_TAKEN_IN_HAND, "Le comptable public a comptabilisé la facture"),
    Status.MISE_EN_PAIEMENT: Equivalent("211", "Paiement transmis", "PD"),
    Status.COMPLETEE: Equivalent("209", "Complétée", "IP"),
}
# The platform's own rejection of an invoice at integration (not a status the invoice lives in).
PLATFORM_REJECTION = Equivalent("213", "Rejetée", "RE")

# Reform reasons that say the invoice was wrongly addressed: a 210 carrying one means A_RECYCLER.
ADDRESSING_REASONS = frozenset({"DEST_INC", "DEST_ERR", "CODE_ROUTAGE_ERR", "SIRET_ERR"})
# The business reasons a recipient gives (the domain's list), as the console offers them.
RECIPIENT_REASONS = ("DOUBLON", "DEST_INC", "DEST_ERR", "CODE_ROUTAGE_ERR", "SIRET_ERR", "JUSTIF_ABS", "REF_CT_ABSENT")


def from_cdar(code: str, reason: str | None) -> Status | None:
    """The status a recipient means by a CDAR code, or None for a code it may not send."""
    code = code.strip()
    if code == "210":
        return Status.A_RECYCLER if (reason or "").strip().upper() in ADDRESSING_REASONS else Status.REJETEE
    return {"204": Status.SERVICE_FAIT, "205": Status.SERVICE_FAIT, "206": Status.SERVICE_FAIT,
            "207": Status.SUSPENDUE, "208": Status.SUSPENDUE, "211": Status.MISE_EN_PAIEMENT}.get(code)
