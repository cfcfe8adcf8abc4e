"""Invoice lifecycle over SFTP: recipients drop statuses, suppliers receive status-returns in their format.

Two accounts of the sample world play each story through the embedded SFTP server: the supplier acme and
the recipient mairie-exemple (hopital-exemple joins for re-addressing).
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from itertools import pairwise, product
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree
from sqlmodel import select

from gateway.cli import main
from gateway.data.db import session_scope
from gateway.data.models import Flow, Invoice, InvoiceStatus, Verdict
from gateway.lifecycle.cdar import build_cdar
from gateway.lifecycle.notice import StatusNotice
from gateway.lifecycle.receivability import SUFFIX as LIFECYCLE
from gateway.lifecycle.service import StatusRefused, delivered, integrated, set_status
from gateway.lifecycle.statuses import Status
from gateway.returns import assert_valid
from tests.harness import (
    REPO,
    REPORT_NS,
    SAMPLES,
    cli,
    drop,
    files,
    outbox,
    readdress,
    renumber,
    wait_for,
    wait_report,
)
from tests.sftp_harness import PASSWORDS, sftp_site  # noqa: F401  (fixture)

UBL_OK = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
SELLER = "81234567600017"
MAIRIE, HOPITAL = "21370999100011", "26370999000018"
CDAR_NS = {"rsm": "urn:un:unece:uncefact:data:standard:CrossDomainAcknowledgementAndResponse:100",
           "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


DOMAIN = REPO.parent / "shared" / "docs" / "domain.md"
needs_domain = pytest.mark.skipif(not DOMAIN.exists(), reason=f"the domain notes are not at {DOMAIN} "
                                                             "(../shared/docs/domain.md): nothing to check against")

# Who may follow whom, written from the domain notes (Chorus Pro's statuses: the main path forward only, each step
# after MISE_A_DISPOSITION optional; SUSPENDUE -> COMPLETEE, which goes on; REJETEE and MISE_EN_PAIEMENT final)
# and, where they leave the matrix open, from the choices the README and gateway/lifecycle/statuses.py state:
# EN_COURS_ACHEMINEMENT between DEPOSEE and MISE_A_DISPOSITION, nobody acting before the invoice is available,
# A_RECYCLER only before the recipient acted on it and final, SUSPENDUE up to SERVICE_FAIT, REJETEE until mandated.
# Written out here, not read from the code: a change of the code's table fails the walk below.
_AFTER_AVAILABLE = "SERVICE_FAIT MANDATEE MISE_A_DISPOSITION_COMPTABLE COMPTABILISEE MISE_EN_PAIEMENT"
FOLLOWERS = {
    "DEPOSEE": "EN_COURS_ACHEMINEMENT MISE_A_DISPOSITION",
    "EN_COURS_ACHEMINEMENT": "MISE_A_DISPOSITION",
    "MISE_A_DISPOSITION": f"{_AFTER_AVAILABLE} A_RECYCLER SUSPENDUE REJETEE",
    "COMPLETEE": f"{_AFTER_AVAILABLE} A_RECYCLER SUSPENDUE REJETEE",
    "SERVICE_FAIT": "MANDATEE MISE_A_DISPOSITION_COMPTABLE COMPTABILISEE MISE_EN_PAIEMENT SUSPENDUE REJETEE",
    "MANDATEE": "MISE_A_DISPOSITION_COMPTABLE COMPTABILISEE MISE_EN_PAIEMENT",
    "MISE_A_DISPOSITION_COMPTABLE": "COMPTABILISEE MISE_EN_PAIEMENT",
    "COMPTABILISEE": "MISE_EN_PAIEMENT",
    "SUSPENDUE": "COMPLETEE REJETEE",
    "MISE_EN_PAIEMENT": "",
    "REJETEE": "",
    "A_RECYCLER": "",
}


def _moves(app, recycling: bool) -> dict[tuple[Status, Status], Status | None]:
    """What set_status does with a new invoice put at each status and asked for each status: the status it then
    has (also that of the status row recorded), or None where the move is refused."""
    app.settings.lifecycle.recycling = recycling
    with session_scope(app.engine) as session:
        session.add(Flow(id="F", account="acme", original_name="f.xml", size=1, sha256="0" * 64))
        session.add(Invoice(id="F-001", flow_id="F", number="T-1", seller_siret=SELLER, buyer_siret=MAIRIE,
                            recipient="mairie-exemple", verdict=Verdict.ACCEPTED, status="01"))
    moves = {}
    for current in Status:
        for new in Status:
            with session_scope(app.engine) as session:
                invoice = session.get(Invoice, "F-001")
                invoice.status = current.value
                try:
                    row = set_status(app, session, invoice, new, "operator", reason_code="JUSTIF_ABS")
                    assert row.status == invoice.status, (current.name, new.name)
                    moves[current, new] = Status(invoice.status)
                except StatusRefused:
                    moves[current, new] = None
    return moves


@pytest.mark.parametrize("recycling", [False, True], ids=["recycling-withdrawn", "recycling-kept"])
def test_every_transition_of_the_table(app, recycling):
    """Walk every pair: each move is made exactly when the table above lists it; with recycling withdrawn (the
    default), asking for A_RECYCLER is asking for REJETEE."""
    for (current, new), got in _moves(app, recycling).items():
        meant = Status.REJETEE if new is Status.A_RECYCLER and not recycling else new
        assert got == (meant if meant.name in FOLLOWERS[current.name].split() else None), (current.name, new.name)


def _published() -> dict[str, object]:
    """What the domain notes publish about Chorus Pro's invoice statuses: the name of each code, the main path in
    its order, the final statuses, the side paths a recipient sets, and the status completing a suspended one."""
    section = DOMAIN.read_text().split("## Invoice statuses", 1)[1].split("\n## ", 1)[0]
    listed, _, rules = section.partition("- Main path:")
    main_path, _, rest = rules.partition("\n- ")
    sides = re.search(r"Side paths set by the recipient:(.*?)\n- ", rest, re.S).group(1)
    return {"codes": dict(re.findall(r"\b(\d\d) ([A-Z][A-Z_]+)", listed)),
            "main path": [Status[name] for name in re.findall(r"\b[A-Z][A-Z_]{3,}\b", main_path)],
            "final": {Status[name] for name in re.findall(r"\b([A-Z][A-Z_]+) \(terminal", section)},
            "sides": [Status[name] for name in re.findall(r"\b([A-Z][A-Z_]+) \(", sides)],
            "completed": Status[re.search(r"becomes ([A-Z][A-Z_]+), then goes on", sides).group(1)]}


@needs_domain
def test_the_moves_keep_the_domains_rules(app):
    """Against the domain notes, not the gateway's table: the statuses and their codes are Chorus Pro's; no move
    leaves a final status or goes back on the main path; the main path may be walked forward from
    MISE_A_DISPOSITION skipping any step; a recipient may send back an invoice made available (each side path);
    a suspended invoice is completed, and a completed one goes on."""
    domain = _published()
    assert domain["codes"] == {status.value: status.name for status in Status}
    path, final, available = domain["main path"], domain["final"], Status.MISE_A_DISPOSITION
    assert (path[0], path[-1], available in path) == (Status.DEPOSEE, Status.MISE_EN_PAIEMENT, True)
    allowed = {pair for pair, got in _moves(app, recycling=True).items() if got is not None}
    for current, new in product(Status, Status):
        if current in final:
            assert (current, new) not in allowed, f"{current.name} is final, yet it may become {new.name}"
        if current in path and new in path and path.index(new) <= path.index(current):
            assert (current, new) not in allowed, f"{current.name} may go back to {new.name}"
    onward = path[path.index(available) + 1:]
    skips = {(c, n) for i, c in enumerate(path) if i >= path.index(available) for n in path[i + 1:]}
    assert set(pairwise(path)) | skips <= allowed
    assert {(available, side) for side in domain["sides"]} <= allowed
    assert (Status.SUSPENDUE, domain["completed"]) in allowed
    assert {(domain["completed"], n) for n in onward} <= allowed


def test_a_batch_of_invoices_takes_its_statuses_once_each_in_order(app):
    """integrated and delivered take a batch: one status row an invoice, an invoice given twice (two deliveries at
    once) made available once, a rejected invoice none."""
    with session_scope(app.engine) as session:
        session.add(Flow(id="F", account="acme", original_name="f.xml", size=1, sha256="0" * 64))
        invoices = [Invoice(id=f"F-00{n}", flow_id="F", number=f"T-{n}", seller_siret=SELLER, buyer_siret=MAIRIE,
                            recipient="mairie-exemple", findings="[]",
                            verdict=Verdict.REJECTED if n == 2 else Verdict.ACCEPTED) for n in (3, 1, 2)]
        session.add_all(invoices)
        session.flush()
        integrated(app, session, invoices)
        delivered(app, session, [(invoices[1], "F"), (invoices[0], "F"), (invoices[1], "F")])
    with session_scope(app.engine, write=False) as session:
        rows = session.exec(select(InvoiceStatus)).all()
        assert sorted((row.invoice_id, Status(row.status).name) for row in rows) == [
            ("F-001", "DEPOSEE"), ("F-001", "MISE_A_DISPOSITION"), ("F-003", "DEPOSEE"),
            ("F-003", "MISE_A_DISPOSITION")]
        available = Status.MISE_A_DISPOSITION.value
        assert [session.get_one(Invoice, f"F-00{n}").status for n in (1, 2, 3)] == [available, None, available]


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
        """/out's files ending with suffix, but the flows' own lifecycle (500/501: tests/test_cdar_conformance.py)."""
        return sorted(n for n in self.sftp.listdir("/out") if n.endswith(suffix) and not n.endswith(LIFECYCLE))

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
    cli(site.config, "accounts", "add", "hopital-exemple", "--update", "--role", "recipient",
        "--password", "hopital-secret")
    PASSWORDS.setdefault("hopital-exemple", "hopital-secret")
    parties = {name: Party(site, name) for name in ("acme", "mairie-exemple", "hopital-exemple")}
    yield site, parties
    for party in parties.values():
        party.close()


def _notices(party: Party, suffix: str = ".cdar.xml") -> list[etree._Element]:
    """The CDAR status-returns a party received, in the order they were issued (the status row's id, in the
    file name, breaks ties of the second)."""
    notices = [(name, etree.fromstring(party.read(name))) for name in party.files(suffix)]
    notices.sort(key=lambda item: (item[1].findtext("rsm:ExchangedDocument/ram:IssueDateTime/*", namespaces=CDAR_NS),
                                   _row_id(item[0])))
    return [notice for _, notice in notices]


def _row_id(name: str) -> int:
    found = re.search(r"\.status-(\d+)\.", name)
    return int(found.group(1)) if found else 0


def _codes(party: Party, suffix: str = ".cdar.xml") -> list[str]:
    """The CDAR codes of the status-returns a party received, in the order they were issued."""
    return [n.findtext(".//ram:ReferenceReferencedDocument/ram:ProcessConditionCode", namespaces=CDAR_NS)
            for n in _notices(party, suffix)]


def _comments(party: Party) -> list[str | None]:
    """The comment (status detail note without subject) of each CDAR a party received, in order."""
    return [_cdar_fields(n)[3] for n in _notices(party)]


def _recipient_cdar(number: str, status: Status, reason_code: str | None = None) -> bytes:
    """A status message as a recipient's software writes it: CDAR naming the invoice by number and seller."""
    return build_cdar(StatusNotice(
        message_id=f"R-{number}-{status.value}", status=status, at=datetime.now(UTC), invoice_id=number,
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
    assert _codes(acme) == ["200", "203", "204", "211"]
    for name in acme.files(".cdar.xml"):
        _check_cdar(acme.read(name), "LC-1")
    assert _comments(acme) == [None, None, "Le destinataire public a réalisé le service fait", None]
    assert _statuses(site, "LC-1") == [("01", "gateway"), ("03", "gateway"), ("07", "mairie-exemple"),
                                       ("11", "mairie-exemple")]


@pytest.mark.parametrize("status_format,suffix,schema", [("peppol", ".ir.xml", "UBL-ApplicationResponse-2.1"),
                                                         ("gateway", ".status.xml", "status")])
def test_supplier_receives_statuses_in_its_format(story, status_format, suffix, schema):
    site, p = story
    cli(site.config, "accounts", "add", "acme", "--update", "--role", "supplier", "--status-format", status_format)
    p["acme"].drop(renumber(UBL_OK, "LC-2"))
    p["acme"].wait(suffix, 2, "DEPOSEE and MISE_A_DISPOSITION")
    p["mairie-exemple"].drop(_recipient_cdar("LC-2", Status.SERVICE_FAIT))
    names = p["acme"].wait(suffix, 3, "SERVICE_FAIT")
    for name in names:
        assert_valid(schema, p["acme"].read(name))
    assert p["acme"].files(".cdar.xml") == []
    service_fait = etree.fromstring(p["acme"].read(max(names, key=_row_id)))
    comment = "Le destinataire public a réalisé le service fait"
    if status_format == "gateway":
        assert [service_fait.findtext(f"{{urn:gateway:status:1}}{tag}") for tag in
                ("statusName", "cdarCode", "cdarLabel", "cdarComment")] == ["SERVICE_FAIT", "204", "Prise en charge",
                                                                            comment]
    else:
        assert [e.text for e in service_fait.iterfind(".//{*}Response/{*}ResponseCode")] == ["IP"]
        assert [e.text for e in service_fait.iterfind(".//{*}Response/{*}Status/{*}StatusReason")] == [comment]


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


def test_recycling_request_rejects_the_invoice_and_its_number_stays_taken(story):
    """Recycling is withdrawn: the recipient's 210 with an addressing reason makes the invoice REJETEE, the
    supplier is told 210 with that reason, and the number sent again to the right structure is a duplicate."""
    site, p = story
    acme, mairie, hopital = p["acme"], p["mairie-exemple"], p["hopital-exemple"]
    acme.drop(renumber(UBL_OK, "LC-4"))
    mairie.wait_invoices(1, "the invoice")
    assert _state(mairie.report_of(mairie.drop(_recipient_cdar("LC-4", Status.A_RECYCLER, "DEST_ERR")))) == "INTEGRE"
    acme.wait(".cdar.xml", 3, "REJETEE")
    refused = _notices(acme)[-1]
    assert [refused.findtext(f".//ram:ReferenceReferencedDocument/{path}", namespaces=CDAR_NS) for path in
            ("ram:ProcessConditionCode", "ram:SpecifiedDocumentStatus/ram:ReasonCode")] == ["210", "DEST_ERR"]
    assert _statuses(site, "LC-4")[-1] == ("05", "mairie-exemple")
    again = readdress(renumber(UBL_OK, "LC-4"), HOPITAL, "PHARMACIE")
    report = acme.report_of(acme.drop(again))
    assert _state(report) == "REJETE"
    assert report.xpath("//r:rule/text()", namespaces=REPORT_NS) == ["B2G-DUPLICATE"]
    assert hopital.invoices() == [] and len(mairie.invoices()) == 1


def test_rejected_invoice_number_cannot_be_used_again(story):
    _, p = story
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
    cli(site.config, "accounts", "add", "lycee-exemple", "--update", "--role", "recipient", "--siret", "19370998700013")
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
    assert _codes(acme) == ["200", "203", "204"]
    refused = CliRunner().invoke(main, ["--config", str(site.config), "status", "set", "LC-7", "SERVICE_FAIT"])
    assert refused.exit_code == 1 and "cannot become SERVICE_FAIT" in refused.output


# ---------------------------------------------------------------- stories in the zones, on each database

TAKEN_IN_HAND = [  # the public buyer's statuses, each told as 204 Prise en charge with its comment
    ("SERVICE_FAIT", "07", "Le destinataire public a réalisé le service fait"),
    ("MANDATEE", "08", "Le destinataire public a mandaté la facture"),
    ("MISE_A_DISPOSITION_COMPTABLE", "09", "Le destinataire public a mis la facture à disposition du comptable public"),
    ("COMPTABILISEE", "10", "Le comptable public a comptabilisé la facture"),
]
STATUS_NS = "{urn:gateway:status:1}"


def _returns(root: Path, suffix: str = ".cdar.xml") -> list[etree._Element]:
    """The status-returns acme received in its zone, in the order the statuses were set."""
    paths = [p for p in files(outbox(root, "acme"), suffix) if ".status-" in p.name]
    return [etree.parse(str(p)).getroot() for p in sorted(paths, key=lambda p: _row_id(p.name))]


def _wait_returns(root: Path, count: int, what: str, suffix: str = ".cdar.xml") -> list[etree._Element]:
    return wait_for(lambda: _returns(root, suffix) if len(_returns(root, suffix)) >= count else None, 20, what)


def _cdar_fields(notice: etree._Element) -> tuple[str | None, ...]:
    """Code, label, reason code, comment and mandate of a CDAR status-return."""
    reference = notice.find(".//ram:ReferenceReferencedDocument", CDAR_NS)

    def text(path: str) -> str | None:
        found = reference.xpath(f"{path}/text()", namespaces=CDAR_NS)
        return found[0] if found else None

    return tuple(text(path) for path in (
        "ram:ProcessConditionCode", "ram:ProcessCondition", "ram:SpecifiedDocumentStatus/ram:ReasonCode",
        "ram:SpecifiedDocumentStatus/ram:IncludedNote[not(ram:SubjectCode)]/ram:Content",
        "ram:SpecifiedDocumentStatus/ram:IncludedNote[ram:SubjectCode='PMT']/ram:Content"))


def _deposit(config: Path, number: str, content: bytes | None = None, name: str | None = None) -> str:
    """acme deposits an invoice (the UBL sample under number) in its zone; its id, once it is INTEGRE and
    made available (DEPOSEE and MISE_A_DISPOSITION told)."""
    root, name = config.parent, name or f"{number}.xml"
    drop(root, "acme", name, content or renumber(UBL_OK, number))
    report = wait_report(root, "acme", name)
    assert _state(report) == "INTEGRE", report.xpath("//r:rule/text()", namespaces=REPORT_NS)
    invoice_id = report.findtext("r:invoices/r:invoice/r:invoiceId", namespaces=REPORT_NS)
    wait_for(lambda: json.loads(cli(config, "invoices", "show", invoice_id, "--json"))["status"] == "03", 20,
             f"{number} made available")
    return invoice_id


@pytest.mark.parametrize("status_format", ["cdar", "gateway", "peppol"])
def test_public_buyer_statuses_reach_the_supplier_as_204_with_their_comment(config_file, running, status_format):
    """SERVICE_FAIT, MANDATEE, MISE_A_DISPOSITION_COMPTABLE, COMPTABILISEE are each 204 Prise en charge for
    the supplier, with the comment naming the precise status (IP with it for Peppol); `invoices show` says
    what the supplier was told."""
    root = config_file.parent
    cli(config_file, "accounts", "add", "acme", "--update", "--role", "supplier", "--status-format", status_format)
    suffix = {"cdar": ".cdar.xml", "gateway": ".status.xml", "peppol": ".ir.xml"}[status_format]
    invoice_id = _deposit(config_file, "PC-1")
    for name, _code, _comment in TAKEN_IN_HAND:
        cli(config_file, "status", "set", invoice_id, name, *(["--mandate", "M-77"] if name == "MANDATEE" else []))
    told = _wait_returns(root, 6, "the four statuses told", suffix)[2:]
    if status_format == "cdar":
        assert [_cdar_fields(n) for n in told] == [
            ("204", "Prise en charge", None, comment, "M-77" if name == "MANDATEE" else None)
            for name, _code, comment in TAKEN_IN_HAND]
    elif status_format == "gateway":
        assert [tuple(n.findtext(STATUS_NS + tag) for tag in ("statusName", "cdarCode", "cdarLabel", "cdarComment"))
                for n in told] == [(name, "204", "Prise en charge", comment) for name, _code, comment in TAKEN_IN_HAND]
    else:
        assert [(n.findtext(".//{*}Response/{*}ResponseCode"), n.findtext(".//{*}Response/{*}Status/{*}StatusReason"))
                for n in told] == [("IP", comment) for _name, _code, comment in TAKEN_IN_HAND]
    shown = cli(config_file, "invoices", "show", invoice_id)
    assert "cdar           204 Prise en charge: Le comptable public a comptabilisé la facture" in shown
    assert re.search(r"03 MISE_A_DISPOSITION +203 Mise à disposition +gateway", shown)
    assert re.search(r"07 SERVICE_FAIT +204 Prise en charge +operator", shown)
    data = json.loads(cli(config_file, "invoices", "show", invoice_id, "--json"))
    assert [(s["status"], s["cdar"]["code"], s["cdar"]["comment"]) for s in data["statuses"]][2:] == [
        (code, "204", comment) for _name, code, comment in TAKEN_IN_HAND]


def _status_update(invoice_id: str, code: str, reason_code: str) -> bytes:
    return (f'<statusUpdate xmlns="urn:gateway:status:1"><invoiceId>{invoice_id}</invoiceId>'
            f'<statusCode>{code}</statusCode><reasonCode>{reason_code}</reasonCode></statusUpdate>').encode()


@pytest.mark.parametrize(("channel", "reason_code"), [("cdar", "DEST_ERR"), ("status-xml", "DEST_INC"),
                                                      ("cli", "SIRET_ERR")])
def test_recycling_is_withdrawn_whoever_asks(config_file, running, channel, reason_code):
    """A_RECYCLER asked by CDAR (210 with an addressing reason), by the gateway's status file (04) or with
    `gateway status set` makes the invoice REJETEE with that reason; the supplier is told 210 with it (as the
    reform's DEST_ERR where the reform does not allow it with 210), and the
    number sent again, re-addressed, is refused as a duplicate (REJ_UNI)."""
    root = config_file.parent
    number = f"RW-{channel}"
    invoice_id = _deposit(config_file, number)
    if channel == "cdar":
        drop(root, "mairie-exemple", "back.xml", _recipient_cdar(number, Status.A_RECYCLER, reason_code))
        assert _state(wait_report(root, "mairie-exemple", "back.xml")) == "INTEGRE"
    elif channel == "status-xml":
        drop(root, "mairie-exemple", "back.xml", _status_update(invoice_id, "04", reason_code))
        assert _state(wait_report(root, "mairie-exemple", "back.xml")) == "INTEGRE"
    else:
        said = cli(config_file, "status", "set", number, "A_RECYCLER", "--reason", reason_code)
        assert said == (f"invoice {invoice_id} is now REJETEE (05) (A_RECYCLER is withdrawn: "
                        "see [lifecycle] recycling)\n")
    refused = _wait_returns(root, 3, "the refusal told")[-1]
    # the reform's 210 reason for wrong addressing (BR-FR-CDV-CL-09), the recipient's own heading the text
    assert _cdar_fields(refused)[:3] == ("210", "Refusée", "DEST_ERR")
    assert refused.findtext(".//ram:SpecifiedDocumentStatus/ram:Reason", namespaces=CDAR_NS) == (
        "motif" if reason_code == "DEST_ERR" else reason_code)
    shown = json.loads(cli(config_file, "invoices", "show", invoice_id, "--json"))
    assert (shown["status_name"], shown["statuses"][-1]["reason_code"], shown["cdar"]["code"]) == (
        "REJETEE", reason_code, "210")
    flow = json.loads(cli(config_file, "flows", "show", shown["flow_id"], "--json"))
    changed = [e for e in flow["events"] if e["kind"] == "status_changed"][-1]
    assert (changed["status"], changed["requested"]) == ("REJETEE", "A_RECYCLER")

    drop(root, "acme", "again.xml", readdress(renumber(UBL_OK, number), HOPITAL, "PHARMACIE"))
    report = wait_report(root, "acme", "again.xml")
    assert (_state(report), report.xpath("//r:rule/text()", namespaces=REPORT_NS)) == ("REJETE", ["B2G-DUPLICATE"])
    rejected = wait_for(lambda: files(outbox(root, "acme"), ".rejected.cdar.xml"), what="the 213 notice")
    assert [_cdar_fields(etree.parse(str(p)).getroot())[::2] for p in rejected] == [("213", "REJ_UNI", None)]
    assert files(outbox(root, "hopital-exemple"), ".xml") == []


@pytest.fixture
def recycling(config_file: Path) -> Path:
    """The test's configuration with `[lifecycle] recycling = true` (requested before `app`)."""
    config_file.write_text(config_file.read_text() + "[lifecycle]\nrecycling = true\n")
    return config_file


def test_recycling_kept_by_configuration_frees_the_number(recycling, app, running):
    """With `[lifecycle] recycling = true` the historic behaviour stays: A_RECYCLER, 210 with the reason to
    the supplier, and the invoice sent again under its number to the right structure is delivered there."""
    assert app.settings.lifecycle.recycling is True
    root = recycling.parent
    invoice_id = _deposit(recycling, "RK-1")
    drop(root, "mairie-exemple", "back.xml", _recipient_cdar("RK-1", Status.A_RECYCLER, "DEST_ERR"))
    assert _state(wait_report(root, "mairie-exemple", "back.xml")) == "INTEGRE"
    assert _cdar_fields(_wait_returns(root, 3, "A_RECYCLER told")[-1])[:3] == ("210", "Refusée", "DEST_ERR")
    assert json.loads(cli(recycling, "invoices", "show", invoice_id, "--json"))["status_name"] == "A_RECYCLER"
    again = readdress(renumber(UBL_OK, "RK-1"), HOPITAL, "PHARMACIE")
    again_id = _deposit(recycling, "RK-1", again, name="again.xml")
    assert (outbox(root, "hopital-exemple") / f"{again_id}.xml").read_bytes() == again


def test_invoice_recycled_before_the_upgrade_may_be_sent_again_once(config_file, app, running):
    """An invoice left A_RECYCLER by the historic behaviour keeps what it was promised: its number may be
    used once more, by the re-addressed invoice; after that, the number is taken."""
    root = config_file.parent
    invoice_id = _deposit(config_file, "RL-1")
    with session_scope(app.engine) as session:  # as the gateway before the upgrade left it
        invoice = session.get(Invoice, invoice_id)
        invoice.status = Status.A_RECYCLER.value
        session.add(InvoiceStatus(invoice_id=invoice_id, status=Status.A_RECYCLER.value, actor="mairie-exemple",
                                  reason_code="DEST_ERR", source="before-the-upgrade"))
    again = readdress(renumber(UBL_OK, "RL-1"), HOPITAL, "PHARMACIE")
    again_id = _deposit(config_file, "RL-1", again, name="again.xml")
    assert (outbox(root, "hopital-exemple") / f"{again_id}.xml").read_bytes() == again
    drop(root, "acme", "third.xml", readdress(renumber(UBL_OK, "RL-1"), HOPITAL, "PHARMACIE", note="3e envoi"))
    report = wait_report(root, "acme", "third.xml")
    assert (_state(report), report.xpath("//r:rule/text()", namespaces=REPORT_NS)) == ("REJETE", ["B2G-DUPLICATE"])
