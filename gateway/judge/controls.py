"""Platform controls (B2G): what Chorus Pro checks about who deposits an invoice and what it already holds.

Like the routing rules, each control is a small function marked with `@rule(rule_id)` (gateway.judge.rule)
returning the supplier's message when the invoice breaks it. They read a `Deposit`: the invoice's data, the account
that deposited it, the day it did, and the numbers already accepted earlier in the same flow.

The duplicate key is the reform's (year of issue, seller SIREN, invoice number): the same number from two
establishments (SIRETs) of one company is a duplicate, the same number issued in another year is not. It is
read off the rows as they are (the SIREN is the first nine digits of the seller SIRET, the year the first
four characters of the ISO issue date), so invoices recorded before this key need no migration; the
query goes through the index on the number. An invoice without an issue date (none passes the rules)
matches the number in any year. An invoice rejected at integration never held its number; one the
recipient sent back as A_RECYCLER (before recycling was withdrawn, or with `[lifecycle] recycling`) gives
it back; one that is SUSPENDUE is completed, not duplicated, by a document under its number.

Earlier invoices are read from a `Ledger`: for a worker's batch, one query reads those the database holds under
any of the batch's numbers, and the invoices the batch accepts are added to it as they are, so that the batch's
rows are written together at its end instead of flushed before each invoice's query.

A credit note corrects an invoice of its own seller (BT-25, with its issue date BT-26): one the gateway accepted
from the same seller SIREN (earlier, or in the same flow), or one the gateway cannot know because it was issued
through another channel before the depositing account existed, which the credit note shows by giving that
invoice's issue date. Any other reference is refused: an invoice issued once the account could deposit here
came through here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from sqlmodel import Session, select
from stdnum.fr import siret as siret_number

from gateway.data.findings import Finding
from gateway.data.models import Invoice, as_utc
from gateway.data.reference import FRESH, Reference
from gateway.judge.rule import Rule, rule, run_rules
from gateway.lifecycle.statuses import Status
from gateway.validate.extract import InvoiceData

__all__ = ["CONTROLS", "STAGE", "Deposit", "DuplicateKey", "Ledger", "check_deposit", "duplicate_key"]

STAGE = "platform"
MAX_NUMBER = 20
MAX_ENGAGEMENT = 50
PUBLIC_ONLY_SERVICE = "FACTURES_PUBLIQUES"
# UNTDID 1001 codes that EN 16931 treats as credit notes.
CREDIT_NOTE_CODES = frozenset({"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"})
_CHUNK = 500  # numbers a query asks for at once (SQLite bounds a statement's parameters)


class Ledger:
    """The invoices that deposits are checked against, by number: those that held a status when it was read (one
    query for all the numbers given), then those accepted since, as they are (accepted)."""

    def __init__(self, session: Session, data: Iterable[InvoiceData]) -> None:
        numbers = sorted({n for d in data for n in ((d.number or "").strip(), (d.preceding_invoice or "").strip())
                          if n})
        self._by_number: defaultdict[str, list[Invoice]] = defaultdict(list)
        self._status: dict[str, str | None] = {}
        for start in range(0, len(numbers), _CHUNK):
            query = select(Invoice).where(Invoice.number.in_(numbers[start:start + _CHUNK]),
                                          Invoice.status.is_not(None))
            for invoice in session.exec(query):
                self._by_number[invoice.number or ""].append(invoice)
                self._status[invoice.id] = invoice.status

    def status(self, invoice: Invoice) -> str | None:
        """The invoice's status as the batch leaves it so far."""
        return self._status.get(invoice.id)

    def latest(self, number: str, siren: str, kept: Callable[[Invoice], bool]) -> Invoice | None:
        """The last invoice (by id) of number with a status, from seller SIREN siren, that kept keeps."""
        found = [invoice for invoice in self._by_number.get(number, ())
                 if self.status(invoice) is not None and (invoice.seller_siret or "").startswith(siren)
                 and kept(invoice)]
        return max(found, key=lambda invoice: invoice.id, default=None)

    def accepted(self, invoice: Invoice, completes: Invoice | None) -> None:
        """An invoice just accepted: DEPOSEE, or, completing a suspended one, that one COMPLETEE (as the
        lifecycle will record them)."""
        if completes is not None:
            self._status[completes.id] = Status.COMPLETEE.value
            return
        self._by_number[invoice.number or ""].append(invoice)
        self._status[invoice.id] = Status.DEPOSEE.value


@dataclass
class Deposit:
    session: Session
    data: InvoiceData
    account: str
    day: date
    numbers_in_flow: set[tuple[str | None, str | None, str | None]] = field(default_factory=set)
    reference: Reference = FRESH  # how the accounts and the directory are read (default: afresh, in session)
    ledger: Ledger | None = None  # the earlier invoices (default: read for this deposit alone)

    @cached_property
    def known(self) -> Ledger:
        return self.ledger or Ledger(self.session, [self.data])

    @cached_property
    def seller_siret(self) -> str | None:
        return siret_number.compact(self.data.seller_siret or "") or None

    @cached_property
    def number(self) -> str | None:
        return (self.data.number or "").strip() or None

    @cached_property
    def key(self) -> tuple[str | None, str | None, str | None]:
        return duplicate_key(self.data)

    @cached_property
    def earlier(self) -> Invoice | None:
        """The live invoice of the same key (year of issue, seller SIREN, number) already deposited (one
        sent back as A_RECYCLER frees its number, so the supplier can send it again to the right address)."""
        year, siren, number = self.key
        if siren is None or number is None:
            return None
        return self.known.latest(number, siren, lambda invoice: (
            self.known.status(invoice) != Status.A_RECYCLER.value
            and (year is None or (invoice.issue_date or "").startswith(f"{year}-"))))

    @cached_property
    def is_credit_note(self) -> bool:
        return self.data.syntax == "ubl-creditnote" or (self.data.type_code or "").strip() in CREDIT_NOTE_CODES

    @cached_property
    def corrected(self) -> Invoice | None:
        """The invoice the credit note references, accepted earlier from the same seller SIREN (and issued on
        the date it gives, if it gives one)."""
        siren, number, issued = self.key[1], (self.data.preceding_invoice or "").strip(), self.data.preceding_issue_date
        if siren is None or not number:
            return None
        return self.known.latest(number, siren, lambda invoice: not issued or invoice.issue_date == issued)

    @cached_property
    def completes(self) -> Invoice | None:
        """The SUSPENDUE invoice that this one, under the same number, completes with the missing documents."""
        earlier = self.earlier
        return earlier if earlier is not None and self.known.status(earlier) == Status.SUSPENDUE.value else None


DuplicateKey = tuple[str | None, str | None, str | None]


def duplicate_key(data: InvoiceData) -> DuplicateKey:
    """(year of issue, seller SIREN, invoice number); None where the invoice does not say."""
    issued = (data.issue_date or "").strip()
    year = issued[:4] if len(issued) >= 4 and issued[:4].isdigit() else None
    siren = siret_number.compact(data.seller_siret or "")[:9] or None
    return year, siren, (data.number or "").strip() or None


def _invalid(label: str, value: str | None) -> str | None:
    if value and not siret_number.is_valid(value):
        return f"The {label} SIRET {value!r} is not a valid SIRET (14 digits with a valid check digit)."
    return None


@rule("B2G-SELLER-SIRET-INVALID")
def seller_siret_invalid(deposit: Deposit) -> str | None:
    return _invalid("seller", deposit.data.seller_siret)


@rule("B2G-BUYER-SIRET-INVALID")
def buyer_siret_invalid(deposit: Deposit) -> str | None:
    return _invalid("buyer", deposit.data.buyer_siret)


@rule("B2G-SELLER-NOT-HELD")
def seller_not_held(deposit: Deposit) -> str | None:
    if deposit.seller_siret is None:
        return "The seller has no SIRET (identifier with scheme 0009): the depositing account cannot be checked."
    if deposit.seller_siret not in deposit.reference.sirets(deposit.session, deposit.account):
        return (f"Account {deposit.account!r} does not hold seller SIRET {deposit.seller_siret}: "
                "an account may deposit invoices only for the SIRETs it holds.")
    return None


@rule("B2G-PUBLIC-SERVICE-RESERVED")
def public_service_reserved(deposit: Deposit) -> str | None:
    if (deposit.data.service_code or "").strip() != PUBLIC_ONLY_SERVICE:
        return None
    if deposit.seller_siret and deposit.reference.structure(deposit.session, deposit.seller_siret) is not None:
        return None
    return (f"Service {PUBLIC_ONLY_SERVICE} is reserved for invoices between public structures; "
            f"the seller {deposit.seller_siret or '(no SIRET)'} is not a public structure of the directory.")


@rule("B2G-ENGAGEMENT-TOO-LONG")
def engagement_too_long(deposit: Deposit) -> str | None:
    engagement = (deposit.data.engagement or "").strip()
    if len(engagement) > MAX_ENGAGEMENT:
        return f"The engagement number (BT-13) has {len(engagement)} characters; at most {MAX_ENGAGEMENT} are allowed."
    return None


@rule("B2G-NUMBER-TOO-LONG")
def number_too_long(deposit: Deposit) -> str | None:
    if deposit.number and len(deposit.number) > MAX_NUMBER:
        return (f"The invoice number {deposit.number!r} has {len(deposit.number)} characters; "
                f"an invoice to a public buyer may have at most {MAX_NUMBER}.")
    return None


@rule("B2G-DATE-AFTER-DEPOSIT")
def date_after_deposit(deposit: Deposit) -> str | None:
    issued = deposit.data.issue_date
    if issued and issued > deposit.day.isoformat():
        return f"The invoice is dated {issued}, after the day it was deposited ({deposit.day.isoformat()})."
    return None


@rule("B2G-CREDIT-NOTE-REFERENCE")
def credit_note_reference(deposit: Deposit) -> str | None:
    if deposit.is_credit_note and not (deposit.data.preceding_invoice or "").strip():
        return "A credit note must reference the invoice it corrects (preceding invoice reference, BT-25)."
    return None


@rule("B2G-CREDIT-NOTE-INVOICE-UNKNOWN")
def credit_note_invoice_unknown(deposit: Deposit) -> str | None:
    reference, siren = (deposit.data.preceding_invoice or "").strip(), deposit.key[1]
    if not deposit.is_credit_note or not reference or siren is None:
        return None  # no reference, no seller: B2G-CREDIT-NOTE-REFERENCE and B2G-SELLER-NOT-HELD say so
    if any(key[1:] == (siren, reference) for key in deposit.numbers_in_flow) or deposit.corrected is not None:
        return None
    account = deposit.reference.account(deposit.session, deposit.account)
    opened = as_utc(account.created_at).date().isoformat() if account else deposit.day.isoformat()
    issued = deposit.data.preceding_issue_date
    if issued and issued < opened:
        return None  # issued before the seller could deposit here: through another channel
    dated = f" issued on {issued}" if issued else ""
    return (f"The credit note corrects invoice {reference!r}{dated}, which seller SIREN {siren} never issued through "
            f"this gateway. A credit note may reference an invoice the gateway does not know only if that invoice "
            f"was issued before account {deposit.account!r} could deposit here ({opened}): give its issue date "
            "(BT-26), or the number of an invoice deposited here.")


@rule("B2G-DUPLICATE")
def duplicate(deposit: Deposit) -> str | None:
    year, siren, number = deposit.key
    if siren is None or number is None:
        return None
    issued = f" issued in {year}" if year else ""
    if deposit.key in deposit.numbers_in_flow:
        return f"Invoice number {number!r}{issued} appears twice in this flow for seller SIREN {siren}."
    earlier = deposit.earlier
    status = deposit.known.status(earlier) if earlier is not None else None  # the earlier invoice has one
    if earlier is not None and status is not None and deposit.completes is None:
        return (f"Invoice number {number!r}{issued} of seller SIREN {siren} was already deposited (invoice "
                f"{earlier.id}, seller SIRET {earlier.seller_siret}, {Status(status).name}): "
                "an invoice is unique by year of issue, seller SIREN and number; a new invoice needs a new number.")
    return None


CONTROLS: tuple[Rule, ...] = (
    seller_siret_invalid,
    buyer_siret_invalid,
    seller_not_held,
    public_service_reserved,
    engagement_too_long,
    number_too_long,
    date_after_deposit,
    credit_note_reference,
    credit_note_invoice_unknown,
    duplicate,
)


def check_deposit(deposit: Deposit) -> list[Finding]:
    """Every platform control's finding about one invoice."""
    return run_rules(CONTROLS, deposit, STAGE)
