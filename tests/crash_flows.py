"""The crash test's stream: distinct flows of every kind, each with what the gateway must make of it.

Single UBL and CII invoices and credit notes, batches (.zip, .tar.gz) of valid and invalid invoices,
invoices the directory or the XSD rejects, and flows refused whole (not XML, empty, unknown type, broken
archive). Every invoice is renumbered, so no two flows carry the same bytes and no accepted invoice is a
duplicate of another.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from gateway.data.models import FlowState
from tests.harness import SAMPLES, renumber, tar_gz_of, zip_of

FLOWS = SAMPLES / "flows"

VALID = (  # sample, and the recipient it is delivered to
    ("ubl-invoice-ok.xml", "mairie-exemple"),
    ("cii-invoice-ok.xml", "cc-pays-exemple"),
    ("ubl-creditnote-ok.xml", "hopital-exemple"),
)
REJECTED = (  # sample, and the rule that rejects it
    ("reject-structure-unknown.xml", "DIR-STRUCTURE-UNKNOWN"),
    ("reject-structure-inactive.xml", "DIR-STRUCTURE-INACTIVE"),
    ("reject-service-unknown.xml", "DIR-SERVICE-UNKNOWN"),
    ("reject-ej-required.xml", "DIR-EJ-REQUIRED"),
    ("reject-no-recipient.xml", "DIR-NO-RECIPIENT"),
    ("reject-xsd.xml", "XSD"),
)
NOT_XML = (FLOWS / "reject-not-xml.xml").read_bytes()


@dataclass(frozen=True)
class Document:
    """One invoice as dropped, alone or in a batch: delivered to recipient, or rejected by rule."""

    name: str
    content: bytes
    recipient: str | None = None
    rule: str | None = None

    @property
    def routed(self) -> bool:
        """Whether it passes its XSD and business rules, and so meets the platform controls and the directory."""
        return self.recipient is not None or self.rule.startswith("DIR-")


@dataclass(frozen=True)
class Dropped:
    """A file dropped into the supplier's zone, and what the gateway must make of it."""

    name: str
    content: bytes
    documents: tuple[Document, ...] = ()  # the invoices it carries, in order
    refusal: str | None = None  # the rule refusing the whole flow, before any invoice is judged

    @property
    def state(self) -> FlowState:
        if self.refusal:
            return FlowState.INCIDENTE
        accepted = sum(d.recipient is not None for d in self.documents)
        if accepted == len(self.documents):
            return FlowState.INTEGRE
        return FlowState.INTEGRE_PARTIEL if accepted else FlowState.REJETE

    def timeline(self) -> list[tuple[str, int | None]]:
        """The events the flow's own processing records, in order, as (label, invoice seq or None): intake,
        judgement, the flow's 500/501, report. A delivery is not in it: it has a track of its own, any time after the
        judgement. A status change is labelled with its status (status_changed:DEPOSEE)."""
        head = [("received", None), ("acknowledged", None)]
        tail = [("flow_lifecycle_told", None), ("report_written", None), ("flow_finished", None)]
        if self.refusal:
            return [*head, ("flow_refused", None), *tail]
        judged: list[tuple[str, int | None]] = [("syntax_detected", None)]
        for seq, document in enumerate(self.documents, start=1):
            judged.append(("xsd_checked", seq))
            if document.routed:
                judged += [("rules_checked", seq), ("controls_checked", seq),
                           ("routed" if document.recipient else "route_refused", seq)]
            judged.append(("invoice_accepted" if document.recipient else "invoice_rejected", seq))
        judged += [("status_changed:DEPOSEE", seq) for seq, d in enumerate(self.documents, start=1) if d.recipient]
        return [*head, *judged, *tail]


def _valid(rng: random.Random, name: str, number: str) -> Document:
    sample, recipient = rng.choice(VALID)
    return Document(name, renumber((FLOWS / sample).read_bytes(), number), recipient=recipient)


def _rejected(rng: random.Random, name: str, number: str) -> Document:
    sample, rule = rng.choice(REJECTED)
    return Document(name, renumber((FLOWS / sample).read_bytes(), number), rule=rule)


def _batch_member(rng: random.Random, index: int, seq: int) -> Document:
    """Valid more often than not; else rejected by the directory or the XSD, or not even an invoice."""
    name, number = f"m{seq}.xml", f"CR{index:04d}-{seq}"
    draw = rng.random()
    if draw < 0.55:
        return _valid(rng, name, number)
    if draw < 0.85:
        return _rejected(rng, name, number)
    if draw < 0.93:
        return Document(name, NOT_XML + number.encode(), rule="IRR_SYNTAX")
    return Document(f"m{seq}.txt", number.encode(), rule="IRR_TYPE_F")


def _single_valid(rng: random.Random, index: int) -> Dropped:
    document = _valid(rng, f"{index:04d}-invoice.xml", f"CR{index:04d}")
    return Dropped(document.name, document.content, (document,))


def _single_rejected(rng: random.Random, index: int) -> Dropped:
    document = _rejected(rng, f"{index:04d}-rejected.xml", f"CR{index:04d}")
    return Dropped(document.name, document.content, (document,))


def _batch(rng: random.Random, index: int) -> Dropped:
    documents = tuple(_batch_member(rng, index, seq) for seq in range(1, rng.randint(2, 5) + 1))
    members = {d.name: d.content for d in documents}
    if rng.random() < 0.5:
        return Dropped(f"{index:04d}-batch.zip", zip_of(members), documents)
    return Dropped(f"{index:04d}-batch.tar.gz", tar_gz_of(members), documents)


_REFUSED = (  # a flow refused whole: its name, content and rule, from its index
    lambda i: (f"{i:04d}-not-xml.xml", NOT_XML + str(i).encode(), "IRR_SYNTAX"),
    lambda i: (f"{i:04d}-empty.xml", b" " * i, "IRR_VIDE_F"),  # blank, of a size of its own (index 0: no byte)
    lambda i: (f"{i:04d}-unknown-root.xml", f"<order><id>{i}</id></order>".encode(), "IRR_TYPE_F"),
    lambda i: (f"{i:04d}-invoice.docx", f"word document {i}".encode(), "IRR_TYPE_F"),
    lambda i: (f"{i:04d}-broken.zip", b"PK\x03\x04 not really a zip " + str(i).encode(), "IRR_SYNTAX"),
)


def _refused(rng: random.Random, index: int) -> Dropped:
    name, content, rule = rng.choice(_REFUSED)(index)
    return Dropped(name, content, refusal=rule)


# Out of every 20 flows: 9 single valid invoices, 3 batches, 5 single rejected invoices, 3 refused flows.
_MIX: tuple[tuple[Callable[[random.Random, int], Dropped], int], ...] = (
    (_single_valid, 9), (_batch, 3), (_single_rejected, 5), (_refused, 3))


def stream(count: int, rng: random.Random) -> list[Dropped]:
    """count flows in the proportions of _MIX, shuffled by rng."""
    cycle = [make for make, weight in _MIX for _ in range(weight)]
    makers = [cycle[i % len(cycle)] for i in range(count)]
    rng.shuffle(makers)
    return [make(rng, index) for index, make in enumerate(makers)]
