"""Invoice lifecycle over SFTP: recipients drop statuses, suppliers receive status-returns in their format.

Two accounts of the sample world play each story through the embedded SFTP server: the supplier acme and
the recipient mairie-exemple (hopital-exemple joins for re-addressing).
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from lxml import etree

from gateway.cli import main
from gateway.db import session_scope
from gateway.lifecycle.service import StatusRefused, set_status
from gateway.lifecycle.statuses import TRANSITIONS, Status
from gateway.models import Flow, Invoice, Verdict
from gateway.returns import assert_valid
from gateway.returns.cdar import build_cdar
from gateway.returns.notice import StatusNotice
from tests.harness import REPORT_NS, SAMPLES, cli, readdress, renumber, wait_for
from tests.sftp_harness import PASSWORDS, sftp_site  # noqa: F401  (fixture)

UBL_OK = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
SELLER = "81234567600017"
MAIRIE, HOPITAL = "21370999100011", "26370999000018"
CDAR_NS = {"rsm": "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100",
           "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


def test_every_transition_of_the_table(app):
    """Walk the whole table: each move is allowed exactly when the table lists it."""
    with session_scope(app.engine) as session:
        session.add(Flow(id="F", account="acme", original_name="f.xml", size=1, sha256="0" * 64))
        session.add(Invoice(id="F-001", flow_id="F", number="T-1", seller_siret=SELLER, buyer_siret=MAIRIE,
                            recipient="mairie-exemple", verdict=Verdict.ACCEPTED, status="01"))
    for current in Status:
        for new in Status:
            with session_scope(app.engine) as session:
                invoice = session.get(Invoice, "F-001")
                invoice.status = current.value
                try:
                    set_status(app, session, invoice, new, "operator", reason_code="JUSTIF_ABS")
                    moved = True
                except StatusRefused:
                    moved = False
            assert moved == (new in TRANSITIONS[current]), (current.name, new.name)


def test_reasons_are_required_where_the_domain_says(app):
    with session_scope(app.engine) as session:
        session.add(Flow(id="F", account="acme", original_name="f.xml", size=1, sha256="0" * 64))
        invoice = Invoice(id="F-001", flow_id="F", number="T-1", seller_siret=SELLER, verdict=Verdict.ACCEPTED,
                          status=Status.MISE_A_DISPOSITION.value)
        session.add(invoice)
        for status in (Status.REJETEE, Status.SUSPENDUE, Status.A_RECYCLER):
            with pytest.raises(StatusRefused, match="needs a reason"):
                set_status(app, session, invoice, status, "operator")


# ---------------------------------------------------------------- stories over SFTP

class Party:
    """One account's SFTP session: drop files into /in, read what appears in /out."""

    def __init__(self, site, account: str) -> None:
        self.client = site.client(account)
        self.sftp = self.client.open_sftp()
        self.dropped = 0

    def drop(self, content: bytes, name: str | None = None) -> str:
        self.dropped += 1
        name = name or f"drop-{self.dropped}.xml"
        self.sftp.putfo(io.BytesIO(content), f"/in/{name}")
        return name

    def files(self, suffix: str) -> list[str]:
        return sorted(n for n in self.sftp.listdir("/out") if n.endswith(suffix))

    def invoices(self) -> list[str]:
        """Invoices delivered to this party (its zone also holds its own flows' acks and reports)."""
        return [n for n in self.files(".xml") if not n.endswith((".ack.xml", ".report.xml"))]

    def wait_invoices(self, count: int, what: str) -> list[str]:
        return wait_for(lambda: self.invoices() if len(self.invoices()) >= count else None, 20, what)

    def read(self, name: str) -> bytes:
        buffer = io.BytesIO()
        self.sftp.getfo(f"/out/{name}", buffer)
        return buffer.getvalue()

    def wait(self, suffix: str, count: int, what: str) -> list[str]:
        return wait_for(lambda: self.files(suffix) if len(self.files(suffix)) >= count else None, 20, what)

    def report_of(self, name: str):
        """The integration report of the flow this party dropped as name."""
        def find():
            for ack in self.files(".ack.xml"):
                if etree.fromstring(self.read(ack)).findtext("{urn:gateway:ack:1}originalName") == name:
                    report = ack.replace(".ack.xml", ".report.xml")
                    return etree.fromstring(self.read(report)) if report in self.files(".report.xml") else None
            return None
        return wait_for(find, 20, f"report of {name}")

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def story(sftp_site):  # noqa: F811
    site = sftp_site()
    cli(site.config, "accounts", "add", "hopital-exemple", "--role", "recipient", "--password", "hopital-secret")
    PASSWORDS.setdefault("hopital-exemple", "hopital-secret")
    parties = {name: Party(site, name) for name in ("acme", "mairie-exemple", "hopital-exemple")}
    yield site, parties
    for party in parties.values():
        party.close()


def _codes(party: Party, suffix: str = ".cdar.xml") -> list[str]:
    """The CDAR codes of the status-returns a party received, in the order they were issued."""
    notices = [etree.fromstring(party.read(name)) for name in party.files(suffix)]
    notices.sort(key=lambda n: n.findtext("rsm:ExchangedDocument/ram:IssueDateTime/*", namespaces=CDAR_NS))
    return [n.findtext(".//ram:ReferenceReferencedDocument/ram:ProcessConditionCode", namespaces=CDAR_NS)
            for n in notices]


def _recipient_cdar(number: str, status: Status, reason_code: str | None = None) -> bytes:
    """A status message as a recipient's software writes it: CDAR naming the invoice by number and seller."""
    return build_cdar(StatusNotice(
        message_id=f"R-{number}-{status.value}", status=status, at=datetime.now(timezone.utc), invoice_id=number,
        invoice_number=number, invoice_issue_date="2026-10-15", invoice_type_code="380", seller_siret=SELLER,
        buyer_siret=MAIRIE, actor="buyer", reason_code=reason_code, reason="motif" if reason_code else None,
        mandate_number=None, platform_siren="100000009"))


def _state(report) -> str:
    return report.findtext("r:flow/r:state", namespaces=REPORT_NS)


def _statuses(site, number: str) -> list[tuple[str, str]]:
    shown = json.loads(cli(site.config, "invoices", "show", number, "--json"))
    return [(s["status"], s["actor"]) for s in shown["statuses"]]


def _check_cdar(content: bytes, number: str) -> None:
    """The mandatory elements of the domain notes: status code, invoice number and date, seller SIREN."""
    doc = etree.fromstring(content)
    reference = doc.find(".//ram:ReferenceReferencedDocument", CDAR_NS)
    assert reference.findtext("ram:IssuerAssignedID", namespaces=CDAR_NS) == number
    assert reference.findtext("ram:FormattedIssueDateTime/*", namespaces=CDAR_NS)
    assert reference.findtext("ram:ProcessConditionCode", namespaces=CDAR_NS)
    assert reference.findtext("ram:IssuerTradeParty/ram:GlobalID[@schemeID='0002']",
                              namespaces=CDAR_NS) == SELLER[:9]


def test_main_path_deposit_to_payment(story):
    site, p = story
    acme, mairie = p["acme"], p["mairie-exemple"]
    acme.drop(renumber(UBL_OK, "LC-1"))
    mairie.wait_invoices(1, "the invoice in the recipient's zone")
    acme.wait(".cdar.xml", 2, "DEPOSEE and MISE_A_DISPOSITION")
    assert _codes(acme) == ["200", "203"]
    assert _state(mairie.report_of(mairie.drop(_recipient_cdar("LC-1", Status.SERVICE_FAIT)))) == "INTEGRE"
    acme.wait(".cdar.xml", 3, "SERVICE_FAIT")
    mairie.drop(_recipient_cdar("LC-1", Status.MISE_EN_PAIEMENT))
    acme.wait(".cdar.xml", 4, "MISE_EN_PAIEMENT")
    assert _codes(acme) == ["200", "203", "205", "211"]
    for name in acme.files(".cdar.xml"):
        _check_cdar(acme.read(name), "LC-1")
    assert _statuses(site, "LC-1") == [("01", "gateway"), ("03", "gateway"), ("07", "mairie-exemple"),
                                       ("11", "mairie-exemple")]


@pytest.mark.parametrize("status_format,suffix,schema", [("peppol", ".ir.xml", "UBL-ApplicationResponse-2.1"),
                                                         ("gateway", ".status.xml", "status")])
def test_supplier_receives_statuses_in_its_format(story, status_format, suffix, schema):
    site, p = story
    cli(site.config, "accounts", "add", "acme", "--role", "supplier", "--status-format", status_format)
    p["acme"].drop(renumber(UBL_OK, "LC-2"))
    p["acme"].wait(suffix, 2, "DEPOSEE and MISE_A_DISPOSITION")
    p["mairie-exemple"].drop(_recipient_cdar("LC-2", Status.SERVICE_FAIT))
    names = p["acme"].wait(suffix, 3, "SERVICE_FAIT")
    for name in names:
        assert_valid(schema, p["acme"].read(name))
    assert p["acme"].files(".cdar.xml") == []


def test_suspended_invoice_is_completed_and_goes_on(story):
    site, p = story
    acme, mairie = p["acme"], p["mairie-exemple"]
    acme.drop(renumber(UBL_OK, "LC-3"))
    mairie.wait_invoices(1, "the invoice")
    mairie.drop(_recipient_cdar("LC-3", Status.SUSPENDUE, "JUSTIF_ABS"))
    acme.wait(".cdar.xml", 3, "SUSPENDUE")
    completed = readdress(renumber(UBL_OK, "LC-3"), MAIRIE, "SERV-TECH", note="Avec le bon de livraison signé.")
    assert _state(acme.report_of(acme.drop(completed))) == "INTEGRE"
    delivered = mairie.wait_invoices(2, "the completed invoice, delivered again")
    assert completed in [mairie.read(name) for name in delivered]
    acme.wait(".cdar.xml", 4, "COMPLETEE")
    assert _codes(acme) == ["200", "203", "208", "209"]
    mairie.drop(_recipient_cdar("LC-3", Status.SERVICE_FAIT))
    acme.wait(".cdar.xml", 5, "SERVICE_FAIT after completion")
    assert [s for s, _ in _statuses(site, "LC-3")] == ["01", "03", "06", "12", "07"]


def test_recycled_invoice_is_sent_again_to_the_right_structure(story):
    site, p = story
    acme, mairie, hopital = p["acme"], p["mairie-exemple"], p["hopital-exemple"]
    acme.drop(renumber(UBL_OK, "LC-4"))
    mairie.wait_invoices(1, "the invoice")
    mairie.drop(_recipient_cdar("LC-4", Status.A_RECYCLER, "DEST_ERR"))
    acme.wait(".cdar.xml", 3, "A_RECYCLER")
    again = readdress(renumber(UBL_OK, "LC-4"), HOPITAL, "PHARMACIE")
    assert _state(acme.report_of(acme.drop(again))) == "INTEGRE"
    assert [hopital.read(n) for n in hopital.wait_invoices(1, "the re-addressed invoice")] == [again]
    assert len(mairie.invoices()) == 1


def test_rejected_invoice_number_cannot_be_used_again(story):
    site, p = story
    acme, mairie = p["acme"], p["mairie-exemple"]
    acme.drop(renumber(UBL_OK, "LC-5"))
    mairie.wait_invoices(1, "the invoice")
    mairie.drop(_recipient_cdar("LC-5", Status.REJETEE, "MONTANT_ERR"))
    acme.wait(".cdar.xml", 3, "REJETEE")
    report = acme.report_of(acme.drop(readdress(renumber(UBL_OK, "LC-5"), MAIRIE, "SERV-TECH", note="bis")))
    assert _state(report) == "REJETE"
    assert "B2G-DUPLICATE" in report.xpath("//r:rule/text()", namespaces=REPORT_NS)
    rejection = etree.fromstring(acme.read(acme.wait(".rejected.cdar.xml", 1, "the 213 notice")[0]))
    assert rejection.findtext(".//ram:ProcessConditionCode", namespaces=CDAR_NS) == "213"
    assert rejection.findtext(".//ram:ReasonCode", namespaces=CDAR_NS) == "REJ_UNI"


def test_statuses_only_from_the_invoice_recipient_and_only_legal_moves(story):
    site, p = story
    acme, mairie, hopital = p["acme"], p["mairie-exemple"], p["hopital-exemple"]
    acme.drop(renumber(UBL_OK, "LC-6"))
    mairie.wait_invoices(1, "the invoice")
    report = hopital.report_of(hopital.drop(_recipient_cdar("LC-6", Status.SERVICE_FAIT)))
    assert _state(report) == "REJETE"
    assert report.xpath("//r:rule/text()", namespaces=REPORT_NS) == ["STATUS-INVOICE-UNKNOWN"]
    mairie.drop(_recipient_cdar("LC-6", Status.MISE_EN_PAIEMENT))
    acme.wait(".cdar.xml", 3, "MISE_EN_PAIEMENT")
    report = mairie.report_of(mairie.drop(_recipient_cdar("LC-6", Status.SERVICE_FAIT)))
    assert _state(report) == "REJETE"
    message = report.findtext(".//r:error/r:message", namespaces=REPORT_NS)
    assert "MISE_EN_PAIEMENT" in message and "SERVICE_FAIT" in message
    assert [s for s, _ in _statuses(site, "LC-6")] == ["01", "03", "11"]


def test_operator_sets_statuses_and_payment_is_not_reported_where_the_directory_says_so(story):
    site, p = story
    acme = p["acme"]
    cli(site.config, "accounts", "add", "lycee-exemple", "--role", "recipient", "--siret", "19370998700013")
    acme.drop(readdress(renumber(UBL_OK, "LC-7"), "19370998700013", None))
    acme.wait(".cdar.xml", 2, "DEPOSEE and MISE_A_DISPOSITION")
    cli(site.config, "status", "set", "LC-7", "SERVICE_FAIT")
    acme.wait(".cdar.xml", 3, "SERVICE_FAIT")
    cli(site.config, "status", "set", "LC-7", "11")
    shown = json.loads(cli(site.config, "invoices", "show", "LC-7", "--json"))
    assert [s["status"] for s in shown["statuses"]] == ["01", "03", "07", "11"] and shown["statuses"][-1]["actor"] \
        == "operator"
    flow = json.loads(cli(site.config, "flows", "show", shown["flow_id"], "--json"))
    assert "status_not_reported" in [e["kind"] for e in flow["events"]]
    assert _codes(acme) == ["200", "203", "205"]
    refused = CliRunner().invoke(main, ["--config", str(site.config), "status", "set", "LC-7", "SERVICE_FAIT"])
    assert refused.exit_code == 1 and "cannot become SERVICE_FAIT" in refused.output
