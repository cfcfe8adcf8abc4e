"""Routing rules against a small in-memory directory: one accepted case, then each rule id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlmodel import Session, create_engine

from gateway.data.models import Account, AccountSiret, Role, Service, Structure
from gateway.data.tables import metadata
from gateway.judge.routing import RULES, route
from gateway.validate.extract import InvoiceData

TODAY = date(2026, 6, 15)
PLAIN = "21370999100011"
HOSPITAL = "26370999000018"  # requires a service
COUNTY = "22370999900013"  # requires an engagement number
UNIVERSITY = "19370999500016"  # requires a service or an engagement number
INACTIVE = "25370999200015"
UNCONNECTED = "20370999300018"  # only a supplier account holds it
UNKNOWN = "21379999200010"


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all(
            [
                Structure(siret=PLAIN, name="Commune d'Exemple"),
                Structure(siret=HOSPITAL, name="CH d'Exemple", service_required=True),
                Structure(siret=COUNTY, name="Département d'Exemple", ej_required=True),
                Structure(siret=UNIVERSITY, name="Université d'Exemple", service_or_ej_required=True),
                Structure(siret=INACTIVE, name="Syndicat dissous", active=False),
                Structure(siret=UNCONNECTED, name="Office de tourisme"),
                Service(siret=HOSPITAL, code="PHARMACIE"),
                Service(siret=HOSPITAL, code="TRAVAUX", ej_required=True),
                Service(siret=HOSPITAL, code="ARCHIVES", active=False),
                Service(siret=HOSPITAL, code="NOUVEAU", start_date="2026-07-01"),
                Service(siret=HOSPITAL, code="ANCIEN", start_date="2010-01-01", end_date="2026-06-14"),
                Service(siret=HOSPITAL, code="OUVERT", start_date="2026-06-15", end_date="2026-06-15"),
                Service(siret=UNIVERSITY, code="BU"),
                Account(name="mairie", role=Role.RECIPIENT),
                Account(name="hopital", role=Role.RECIPIENT),
                Account(name="hopital-bis", role=Role.RECIPIENT),
                Account(name="departement", role=Role.RECIPIENT),
                Account(name="universite", role=Role.RECIPIENT),
                Account(name="syndicat", role=Role.RECIPIENT),
                Account(name="acme", role=Role.SUPPLIER),
                AccountSiret(account="mairie", siret=PLAIN),
                AccountSiret(account="hopital", siret=HOSPITAL),
                AccountSiret(account="hopital-bis", siret=HOSPITAL),
                AccountSiret(account="departement", siret=COUNTY),
                AccountSiret(account="universite", siret=UNIVERSITY),
                AccountSiret(account="syndicat", siret=INACTIVE),
                AccountSiret(account="acme", siret=UNCONNECTED),
            ]
        )
        session.commit()
        yield session


def invoice(buyer: str | None, service: str | None = None, ej: str | None = None) -> InvoiceData:
    return InvoiceData(syntax="ubl-invoice", number="F-1", buyer_siret=buyer, service_code=service, engagement=ej)


def test_accepted_invoice_names_structure_and_recipient(session: Session) -> None:
    """A well-addressed invoice has no finding, its structure and its recipient account."""
    result = route(session, invoice(PLAIN), TODAY)
    assert result.findings == []
    assert result.accepted
    assert result.structure is not None and result.structure.siret == PLAIN
    assert result.recipient == "mairie"


@pytest.mark.parametrize(
    "data",
    [
        invoice(HOSPITAL, service="PHARMACIE"),
        invoice(HOSPITAL, service=" OUVERT ", ej="EJ-1"),  # opens and closes today, inclusive
        invoice(HOSPITAL, service="TRAVAUX", ej="EJ-2"),
        invoice(COUNTY, ej="EJ-3"),
        invoice(UNIVERSITY, service="BU"),
        invoice(UNIVERSITY, ej="EJ-4"),
        invoice("213 709 991 00011"),
    ],
)
def test_other_accepted_addressings(session: Session, data: InvoiceData) -> None:
    """Required references given, open services, a SIRET written with spaces: all accepted."""
    assert route(session, data, TODAY).findings == []


def test_first_recipient_by_name_when_several_hold_the_siret(session: Session) -> None:
    """The choice among recipient accounts is stable."""
    assert route(session, invoice(HOSPITAL, service="PHARMACIE"), TODAY).recipient == "hopital"


CASES = [
    ("DIR-BUYER-MISSING", invoice(None), "no SIRET (identifier with scheme 0009)"),
    ("DIR-BUYER-MISSING", invoice("   ", service="PHARMACIE"), "no SIRET"),
    ("DIR-STRUCTURE-UNKNOWN", invoice(UNKNOWN, service="X", ej="Y"), f"Buyer SIRET {UNKNOWN} is not a structure"),
    ("DIR-STRUCTURE-INACTIVE", invoice(INACTIVE), f"Structure {INACTIVE} (Syndicat dissous) is inactive"),
    ("DIR-SERVICE-REQUIRED", invoice(HOSPITAL, ej="EJ-1"), f"Structure {HOSPITAL} (CH d'Exemple) requires a service"),
    ("DIR-SERVICE-UNKNOWN", invoice(HOSPITAL, service="PHARMA"), f"Structure {HOSPITAL} has no service 'PHARMA'"),
    ("DIR-SERVICE-INACTIVE", invoice(HOSPITAL, service="ARCHIVES"), "Service 'ARCHIVES' of structure 2637"),
    ("DIR-SERVICE-INACTIVE", invoice(HOSPITAL, service="NOUVEAU"), "opens on 2026-07-01"),
    ("DIR-SERVICE-INACTIVE", invoice(HOSPITAL, service="ANCIEN"), "closed on 2026-06-14"),
    ("DIR-EJ-REQUIRED", invoice(COUNTY, ej=" "), f"Structure {COUNTY} (Département d'Exemple) requires an engagement"),
    ("DIR-EJ-REQUIRED", invoice(HOSPITAL, service="TRAVAUX"), "Service 'TRAVAUX' of structure 2637"),
    ("DIR-SERVICE-OR-EJ-REQUIRED", invoice(UNIVERSITY), "requires a service code (BT-10) or an engagement number"),
    ("DIR-NO-RECIPIENT", invoice(UNCONNECTED), f"Structure {UNCONNECTED} is not connected to this gateway"),
]


@pytest.mark.parametrize(("rule_id", "data", "message"), CASES, ids=[f"{c[0]}-{n}" for n, c in enumerate(CASES)])
def test_each_rule_rejects_alone(session: Session, rule_id: str, data: InvoiceData, message: str) -> None:
    """Each misaddressing yields exactly its own fatal finding, with a message naming the SIRET or code."""
    result = route(session, data, TODAY)
    assert [(f.stage, f.rule, f.severity) for f in result.findings] == [("directory", rule_id, "fatal")]
    assert message in result.findings[0].message
    assert not result.accepted


def test_every_rule_has_a_case() -> None:
    """No routing rule goes untested."""
    assert {rule_id for rule_id, _, _ in CASES} == {rule.rule_id for rule in RULES}


def test_failed_guard_stops_routing(session: Session) -> None:
    """After an unknown structure there is no structure, service or recipient to speak of."""
    result = route(session, invoice(UNKNOWN), TODAY)
    assert (result.structure, result.recipient) == (None, None)


def test_non_guard_rules_all_report(session: Session) -> None:
    """Independent faults are listed together, so the supplier fixes them in one go."""
    result = route(session, invoice(COUNTY, service="INCONNU"), TODAY)
    assert [f.rule for f in result.findings] == ["DIR-SERVICE-UNKNOWN", "DIR-EJ-REQUIRED"]
    assert result.recipient == "departement"


def test_today_defaults_to_the_current_date(session: Session) -> None:
    """Without `today`, a service closed in the past is closed now."""
    assert [f.rule for f in route(session, invoice(HOSPITAL, service="ANCIEN")).findings] == [
        "DIR-SERVICE-INACTIVE"
    ]
