"""Platform controls (B2G): each control refuses its case and lets the plain case through."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from lxml import etree
from sqlmodel import Session, create_engine

from gateway.data.models import Account, AccountSiret, Flow, Invoice, Role, Structure, Verdict
from gateway.data.tables import metadata
from gateway.judge import controls
from gateway.judge.controls import Deposit, check_deposit, duplicate_key
from gateway.judge.rule import Rule
from gateway.validate.extract import InvoiceData
from tests.harness import REPORT_NS, SAMPLES, cli, drop, files, outbox, renumber, wait_for, wait_report, zip_of

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
    metadata.create_all(engine)
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


REFUSALS = {  # each control's case: the plain invoice so changed, deposited by acme
    "B2G-SELLER-SIRET-INVALID": dict(seller_siret="81234567600018"),
    "B2G-BUYER-SIRET-INVALID": dict(buyer_siret="26370999000019"),
    "B2G-SELLER-NOT-HELD": dict(seller_siret=OTHER_SELLER),
    "B2G-PUBLIC-SERVICE-RESERVED": dict(service_code="FACTURES_PUBLIQUES"),
    "B2G-ENGAGEMENT-TOO-LONG": dict(engagement="E" * 51),
    "B2G-NUMBER-TOO-LONG": dict(number="N" * 21),
    "B2G-DATE-AFTER-DEPOSIT": dict(issue_date="2026-06-16"),
    "B2G-CREDIT-NOTE-REFERENCE": dict(type_code="381"),
    "B2G-CREDIT-NOTE-INVOICE-UNKNOWN": dict(type_code="381", preceding_invoice="UNSEEN-1"),
    "B2G-DUPLICATE": dict(),  # its number already earlier in the same flow (EARLIER_IN_FLOW)
}
EARLIER_IN_FLOW = {"B2G-DUPLICATE": {duplicate_key(PLAIN)}}


def _refusal(session: Session, rule_id: str) -> list[str]:
    return _rules(session, replace(PLAIN, **REFUSALS[rule_id]), seen=EARLIER_IN_FLOW.get(rule_id))


def test_every_control_is_run_and_has_a_case_that_trips_it(session):
    """Every rule the controls module defines is run on a deposit, and tripped by its case here: a control written
    but left out of the ones check_deposit runs, one with no case, or one its case no longer trips fails this."""
    defined = {value.rule_id for value in vars(controls).values() if isinstance(value, Rule)}
    tripped = {rule_id for rule_id in REFUSALS if rule_id in _refusal(session, rule_id)}
    assert defined, "no control found in gateway.judge.controls"
    assert sorted(defined - tripped) == []


@pytest.mark.parametrize("rule_id", sorted(REFUSALS))
def test_control_refuses_its_case(session, rule_id):
    rules = _refusal(session, rule_id)
    assert rule_id in rules
    if rule_id != "B2G-SELLER-SIRET-INVALID":  # an invalid seller SIRET is held by nobody either
        assert rules == [rule_id]


def test_limits_are_inclusive(session):
    assert _rules(session, replace(PLAIN, engagement="E" * 50, number="N" * 20, issue_date="2026-06-14")) == []


CREDIT_NOTE = replace(PLAIN, syntax="ubl-creditnote", type_code="381", number="AV-2026-001")
UNKNOWN = "B2G-CREDIT-NOTE-INVOICE-UNKNOWN"


def test_credit_note_references_an_invoice_of_its_seller(session):
    """A credit note corrects an invoice the gateway accepted from the same seller (SIREN): not another seller's,
    not one rejected at integration, not one the gateway never saw, unless that one was issued before the
    depositing account existed (through another channel), which only its issue date (BT-26) can show."""
    session.get(Account, "acme").created_at = datetime(2026, 3, 1, tzinfo=UTC)
    session.add_all([Account(name="other", role=Role.SUPPLIER), AccountSiret(account="other", siret=OTHER_SELLER),
                     Flow(id="F1", account="acme", original_name="a.xml", size=1, sha256="x")])
    for n, (number, seller, status) in enumerate([("FA-2026-000", SELLER, "03"), ("FA-2026-100", SAME_COMPANY, "01"),
                                                  ("OTHERS-1", OTHER_SELLER, "03"), ("NEVER-1", SELLER, None)]):
        session.add(Invoice(id=f"F1-{n:03d}", flow_id="F1", number=number, seller_siret=seller, status=status,
                            issue_date="2026-04-02", verdict=Verdict.ACCEPTED if status else Verdict.REJECTED))
    session.commit()

    def corrects(number: str | None, issued: str | None = None, seen: set | None = None) -> list[str]:
        return _rules(session, replace(CREDIT_NOTE, preceding_invoice=number, preceding_issue_date=issued), seen=seen)

    assert corrects("FA-2026-000") == [] and corrects("FA-2026-000", "2026-04-02") == []
    assert corrects("FA-2026-100") == []  # another establishment of the same company (SIREN)
    assert corrects("FA-2026-000", "2026-04-03") == [UNKNOWN]  # not the invoice of that date
    assert corrects("OTHERS-1") == [UNKNOWN]  # another seller's number
    assert corrects("NEVER-1") == [UNKNOWN]  # rejected at integration: never issued
    assert corrects("UNSEEN-1") == [UNKNOWN]  # unknown, and no date to tell it came another way
    assert corrects("UNSEEN-1", "2026-02-27") == []  # issued before acme's account existed (2026-03-01)
    assert corrects("UNSEEN-1", "2026-03-01") == [UNKNOWN]  # issued once it could deposit here
    assert corrects("IN-FLOW-1", seen={("2026", "812345676", "IN-FLOW-1")}) == []  # earlier in the same flow
    assert corrects(None) == ["B2G-CREDIT-NOTE-REFERENCE"]
    (finding,) = check_deposit(Deposit(session, replace(CREDIT_NOTE, preceding_invoice="UNSEEN-1"), "acme", DAY, set()))
    assert "UNSEEN-1" in finding.message and "2026-03-01" in finding.message and "BT-26" in finding.message
    assert _rules(session, replace(PLAIN, preceding_invoice="UNSEEN-1")) == []  # an invoice may cite any other


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
                            issue_date="2026-01-05", verdict=Verdict.ACCEPTED if status else Verdict.REJECTED))
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
    # the same key: another establishment of the same company; not the same key: another year
    assert "B2G-DUPLICATE" in _rules(session, replace(PLAIN, seller_siret=SAME_COMPANY), seen=seen)
    assert _rules(session, replace(PLAIN, issue_date="2025-12-31"), seen=seen) == []


SAME_COMPANY = "81234567600025"  # another establishment (SIRET) of acme's company (SIREN 812345676)


def test_duplicate_key_is_year_seller_siren_and_number():
    assert duplicate_key(PLAIN) == ("2026", "812345676", "FA-2026-001")
    assert duplicate_key(replace(PLAIN, seller_siret="812 345 676 00025", number=" FA-2026-001 ")) == (
        "2026", "812345676", "FA-2026-001")
    assert duplicate_key(replace(PLAIN, issue_date=None, seller_siret=None, number="")) == (None, None, None)


def test_uniqueness_is_per_year_of_issue_and_seller_siren(session):
    """Rows recorded before the key existed (issue date, seller SIRET and number as they are) count: the
    same number from another establishment of the company is a duplicate, from another company or another
    year is not."""
    session.add_all([Account(name="acme2", role=Role.SUPPLIER), AccountSiret(account="acme2", siret=SAME_COMPANY),
                     AccountSiret(account="acme2", siret=OTHER_SELLER)])
    session.add(Flow(id="F1", account="acme", original_name="a.xml", size=1, sha256="x"))
    session.add(Invoice(id="F1-001", flow_id="F1", number="FA-2026-001", seller_siret=SELLER, status="03",
                        issue_date="2026-03-01", verdict=Verdict.ACCEPTED))
    session.commit()
    assert _rules(session, PLAIN) == ["B2G-DUPLICATE"]
    sibling = check_deposit(Deposit(session, replace(PLAIN, seller_siret=SAME_COMPANY), "acme2", DAY, set()))
    assert [f.rule for f in sibling] == ["B2G-DUPLICATE"]
    assert "SIREN 812345676" in sibling[0].message and "2026" in sibling[0].message
    assert _rules(session, replace(PLAIN, issue_date="2025-06-15")) == []  # another year
    assert _rules(session, replace(PLAIN, seller_siret=OTHER_SELLER), "acme2") == []  # another company
    assert _rules(session, replace(PLAIN, number="FA-2026-0011")) == []  # another number


def test_seller_siret_with_like_wildcards_matches_nothing_else(session):
    """The SIREN prefix is compared literally: '%' or '_' in a broken seller identifier matches no row."""
    session.add(Flow(id="F1", account="acme", original_name="a.xml", size=1, sha256="x"))
    session.add(Invoice(id="F1-001", flow_id="F1", number="FA-2026-001", seller_siret=SELLER, status="03",
                        issue_date="2026-03-01", verdict=Verdict.ACCEPTED))
    session.commit()
    assert Deposit(session, replace(PLAIN, seller_siret="8123%"), "acme", DAY, set()).earlier is None
    assert Deposit(session, replace(PLAIN, seller_siret="81234567_"), "acme", DAY, set()).earlier is None
    assert Deposit(session, PLAIN, "acme", DAY, set()).earlier.id == "F1-001"


# ---------------------------------------------------------------- through the running gateway

def _as_seller(content: bytes, siret: str) -> bytes:
    """The sample invoice issued by another establishment of ACME (its SIRET wherever it is written)."""
    return content.replace(b">" + SELLER.encode() + b"<", b">" + siret.encode() + b"<")


def _issued(content: bytes, day: str) -> bytes:
    """The sample invoice (issued 2026-10-15) issued on day instead."""
    return content.replace(b"<cbc:IssueDate>2026-10-15</cbc:IssueDate>",
                           f"<cbc:IssueDate>{day}</cbc:IssueDate>".encode())


def test_uniqueness_through_the_gateway_across_establishments_and_years(config_file, running):
    """Year of issue + seller SIREN + number, on the invoices the gateway recorded: a second establishment
    of ACME reusing a number is refused (213 REJ_UNI), the same number issued another year is accepted, in
    separate flows and within one batch."""
    root = config_file.parent
    cli(config_file, "accounts", "add", "acme", "--update", "--role", "supplier", "--siret", SAME_COMPANY)
    sample = renumber((SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes(), "UNI-1")
    assert sample.count(SELLER.encode()) == 2 and b"<cbc:IssueDate>2026-10-15</cbc:IssueDate>" in sample

    def outcome(name: str, content: bytes) -> tuple[str, list[str]]:
        drop(root, "acme", name, content)
        report = wait_report(root, "acme", name)
        return (report.findtext("r:flow/r:state", namespaces=REPORT_NS),
                report.xpath("//r:error/r:rule/text()", namespaces=REPORT_NS))

    assert outcome("first.xml", sample) == ("INTEGRE", [])
    assert outcome("sibling.xml", _as_seller(sample, SAME_COMPANY)) == ("REJETE", ["B2G-DUPLICATE"])
    rejection = wait_for(lambda: files(outbox(root, "acme"), ".rejected.cdar.xml"), what="the 213 notice")
    assert [etree.parse(str(p)).findtext(".//{*}ReasonCode") for p in rejection] == ["REJ_UNI"]
    assert outcome("last-year.xml", _issued(sample, "2025-10-15")) == ("INTEGRE", [])
    assert outcome("sibling-last-year.xml", _issued(_as_seller(sample, SAME_COMPANY), "2025-11-02")) == (
        "REJETE", ["B2G-DUPLICATE"])
    batch = zip_of({"a.xml": renumber(sample, "UNI-2"),
                    "b.xml": _as_seller(renumber(sample, "UNI-2"), SAME_COMPANY),
                    "c.xml": _issued(_as_seller(renumber(sample, "UNI-2"), SAME_COMPANY), "2025-01-10")})
    assert outcome("batch.zip", batch) == ("INTEGRE_PARTIEL", ["B2G-DUPLICATE"])
    shown = json.loads(cli(config_file, "invoices", "show", "UNI-1", "--json"))
    assert shown["issue_date"] == "2025-10-15"  # the latest live UNI-1: last year's, accepted


def _credit_note(number: str, corrects: str | None, issued: str | None) -> bytes:
    """The sample credit note under number, correcting invoice corrects issued on issued (None: not said)."""
    root = etree.fromstring(renumber((SAMPLES / "flows" / "ubl-creditnote-ok.xml").read_bytes(), number))
    ns = {"cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
          "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
    reference = root.find("cac:BillingReference/cac:InvoiceDocumentReference", ns)
    reference.find("cbc:ID", ns).text = corrects
    date = reference.find("cbc:IssueDate", ns)
    if issued is None:
        reference.remove(date)
    else:
        date.text = issued
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_credit_notes_through_the_gateway(config_file, running):
    """Through the pipeline: a credit note on an invoice acme deposited is accepted; on one it never issued
    through the gateway, refused (B2G-CREDIT-NOTE-INVOICE-UNKNOWN), unless it gives that invoice's issue date,
    earlier than acme's account: the sample credit note (2026-09-30) passes so."""
    root = config_file.parent

    def outcome(name: str, content: bytes) -> tuple[str, list[str]]:
        drop(root, "acme", name, content)
        report = wait_report(root, "acme", name)
        return (report.findtext("r:flow/r:state", namespaces=REPORT_NS),
                report.xpath("//r:error/r:rule/text()", namespaces=REPORT_NS))

    invoice = renumber((SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes(), "CN-BASE-1")
    assert outcome("base.xml", invoice) == ("INTEGRE", [])
    assert outcome("on-base.xml", _credit_note("AV-1", "CN-BASE-1", None)) == ("INTEGRE", [])
    assert outcome("on-base-dated.xml", _credit_note("AV-2", "CN-BASE-1", "2026-10-15")) == ("INTEGRE", [])
    assert outcome("on-nothing.xml", _credit_note("AV-3", "NEVER-ISSUED", None)) == ("REJETE", [UNKNOWN])
    today = date.today().isoformat()  # acme's account was made today: an invoice of today came through here
    assert outcome("on-nothing-today.xml", _credit_note("AV-4", "NEVER-ISSUED", today)) == ("REJETE", [UNKNOWN])
    assert outcome("sample.xml", (SAMPLES / "flows" / "ubl-creditnote-ok.xml").read_bytes()) == ("INTEGRE", [])
