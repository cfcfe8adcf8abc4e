"""Platform controls (B2G): each control refuses its case and lets the plain case through."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest
from sqlmodel import Session, SQLModel, create_engine

from gateway.models import Account, AccountSiret, Flow, Invoice, Role, Structure, Verdict
from gateway.route.controls import CONTROLS, Deposit, check_deposit, duplicate_key
from gateway.validate.extract import InvoiceData

DAY = date(2026, 6, 15)
SELLER = "81234567600017"  # held by acme
OTHER_SELLER = "35600000000048"  # valid, held by nobody
PUBLIC_SELLER = "21370999100011"  # a structure of the directory, held by commune
BUYER = "26370999000018"
PLAIN = InvoiceData(syntax="ubl-invoice", number="FA-2026-001", issue_date="2026-06-15", type_code="380",
                    seller_siret=SELLER, buyer_siret=BUYER, service_code="PHARMACIE", engagement="EJ-1")


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([
            Structure(siret=PUBLIC_SELLER, name="Commune"), Structure(siret=BUYER, name="CH"),
            Account(name="acme", role=Role.SUPPLIER), Account(name="commune", role=Role.SUPPLIER),
            AccountSiret(account="acme", siret=SELLER), AccountSiret(account="commune", siret=PUBLIC_SELLER),
        ])
        session.commit()
        yield session


def _rules(session: Session, data: InvoiceData, account: str = "acme", seen: set | None = None) -> list[str]:
    return [f.rule for f in check_deposit(Deposit(session, data, account, DAY, seen if seen is not None else set()))]


def test_plain_invoice_passes_every_control(session):
    assert _rules(session, PLAIN) == []


REFUSALS = {
    "B2G-SELLER-SIRET-INVALID": dict(seller_siret="81234567600018"),
    "B2G-BUYER-SIRET-INVALID": dict(buyer_siret="26370999000019"),
    "B2G-ENGAGEMENT-TOO-LONG": dict(engagement="E" * 51),
    "B2G-NUMBER-TOO-LONG": dict(number="N" * 21),
    "B2G-DATE-AFTER-DEPOSIT": dict(issue_date="2026-06-16"),
    "B2G-CREDIT-NOTE-REFERENCE": dict(type_code="381"),
}


def test_every_control_is_tested():
    tested = set(REFUSALS) | {"B2G-SELLER-NOT-HELD", "B2G-PUBLIC-SERVICE-RESERVED", "B2G-DUPLICATE"}
    assert tested == {c.rule_id for c in CONTROLS}


@pytest.mark.parametrize("rule_id", sorted(REFUSALS))
def test_control_refuses_its_case(session, rule_id):
    rules = _rules(session, replace(PLAIN, **REFUSALS[rule_id]))
    assert rule_id in rules
    if rule_id != "B2G-SELLER-SIRET-INVALID":  # an invalid seller SIRET is held by nobody either
        assert rules == [rule_id]


def test_limits_are_inclusive(session):
    assert _rules(session, replace(PLAIN, engagement="E" * 50, number="N" * 20, issue_date="2026-06-14")) == []


def test_credit_note_with_reference_passes(session):
    assert _rules(session, replace(PLAIN, syntax="ubl-creditnote", type_code="381",
                                   preceding_invoice="FA-2026-000")) == []
    assert _rules(session, replace(PLAIN, syntax="ubl-creditnote", type_code="381")) == ["B2G-CREDIT-NOTE-REFERENCE"]


def test_account_may_deposit_only_for_its_sirets(session):
    assert _rules(session, replace(PLAIN, seller_siret=OTHER_SELLER)) == ["B2G-SELLER-NOT-HELD"]
    assert _rules(session, replace(PLAIN, seller_siret=None)) == ["B2G-SELLER-NOT-HELD"]
    assert _rules(session, replace(PLAIN, seller_siret=PUBLIC_SELLER), account="commune") == []


def test_factures_publiques_is_for_public_sellers_only(session):
    assert _rules(session, replace(PLAIN, service_code="FACTURES_PUBLIQUES")) == ["B2G-PUBLIC-SERVICE-RESERVED"]
    public = replace(PLAIN, service_code="FACTURES_PUBLIQUES", seller_siret=PUBLIC_SELLER)
    assert _rules(session, public, account="commune") == []


def test_duplicate_depends_on_the_earlier_invoice_status(session):
    session.add(Flow(id="F1", account="acme", original_name="a.xml", size=1, sha256="x"))
    earlier = {"LIVE-1": "03", "NEVER-1": None, "RECYCLE-1": "04", "REFUSED-1": "05", "SUSPENDED-1": "06"}
    for n, (number, status) in enumerate(earlier.items()):
        session.add(Invoice(id=f"F1-{n:03d}", flow_id="F1", number=number, seller_siret=SELLER, status=status,
                            verdict=Verdict.ACCEPTED if status else Verdict.REJECTED))
    session.commit()
    assert _rules(session, replace(PLAIN, number="LIVE-1")) == ["B2G-DUPLICATE"]
    assert _rules(session, replace(PLAIN, number="REFUSED-1")) == ["B2G-DUPLICATE"]  # REJETEE: a new number
    assert _rules(session, replace(PLAIN, number="NEVER-1")) == []  # rejected at integration: never held
    assert _rules(session, replace(PLAIN, number="RECYCLE-1")) == []  # A_RECYCLER: sent again, re-addressed
    suspended = Deposit(session, replace(PLAIN, number="SUSPENDED-1"), "acme", DAY, set())
    assert check_deposit(suspended) == [] and suspended.completes.id == "F1-004"
    assert _rules(session, replace(PLAIN, number="FA-2026-002")) == []


def test_duplicate_within_one_flow(session):
    seen = {duplicate_key(PLAIN)}
    assert _rules(session, PLAIN, seen=seen) == ["B2G-DUPLICATE"]
    assert _rules(session, replace(PLAIN, number="FA-2026-009"), seen=seen) == []
