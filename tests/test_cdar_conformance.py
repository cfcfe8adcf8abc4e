"""Every CDAR the gateway writes passes the reform's official artefacts, a recipient's CDAR that does not is
refused, and a flow's own lifecycle reaches a CDAR account as 500 Recevable or 501 Irrecevable (issue 14,
points 6 and 8).

The artefacts (FNFE-MPE's CDAR D22B XSD and BR-FR-CDV 1.4.0.01) are read from ../shared/rules, never copied
into the repository: installed with `gateway rules install` into a scratch folder, they judge as the gateway
runs them (gateway.validate.rules.cdar). Where the folder is absent the tests are skipped, saying so.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree
from structlog.testing import capture_logs

from gateway.cli import main
from gateway.config import ValidateSettings
from gateway.data.findings import Finding
from gateway.data.models import Invoice
from gateway.lifecycle import receivability
from gateway.lifecycle.cdar import NS as CDAR
from gateway.lifecycle.cdar import build_cdar, build_flow_cdar
from gateway.lifecycle.cdar_reasons import BY_STATUS, REFORM_REASONS
from gateway.lifecycle.notice import FlowNotice, StatusNotice
from gateway.lifecycle.service import change_status
from gateway.lifecycle.statuses import Status
from gateway.validate import safexml
from gateway.validate.rules import RulesStage, install, try_pack
from gateway.validate.rules.install import folder_sha256
from tests.harness import (
    REPO,
    REPORT_NS,
    SAMPLES,
    GatewayProcess,
    cli,
    drop,
    files,
    outbox,
    readdress,
    renumber,
    rows,
    running_with,
    wait_for,
    wait_report,
    write_config,
)

ARTEFACTS = REPO.parent / "shared" / "rules" / "france-rfe-cdar"
pytestmark = pytest.mark.skipif(not ARTEFACTS.is_dir(), reason=f"the official CDAR artefacts are not at "
                                f"{ARTEFACTS} (../shared/rules/france-rfe-cdar): nothing to check against")

UBL_OK = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
UBL_XSD_INVALID = (SAMPLES / "flows" / "reject-xsd.xml").read_bytes()
RECIPIENT_CDAR = (SAMPLES / "statuses" / "cdar-service-fait.xml").read_bytes()
MAIRIE = "21370999100011"
LIFECYCLE = receivability.SUFFIX
REFERENCE = "rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument"
AT = datetime(2026, 10, 20, 9, 30)


@pytest.fixture(scope="module")
def packs(tmp_path_factory) -> Path:
    """The artefact set installed as the gateway installs it: both packs, in a folder of the module's own."""
    folder = tmp_path_factory.mktemp("packs")
    assert {pack.name for pack in install(ARTEFACTS, folder, try_pack)} == {"cdar-d22b", "br-fr-cdv"}
    return folder


@pytest.fixture(scope="module")
def stage(packs: Path):
    """One validator process judging with the installed packs (and the built-in invoice packs)."""
    with RulesStage.from_settings(ValidateSettings(packs_dir=packs, processes=1)) as started:
        yield started


def failures(stage: RulesStage, xml: bytes) -> list[str]:
    """The fatal findings of the CDAR XSD and BR-FR-CDV on a document."""
    return [f"{f.rule}: {f.message}" for f in stage.check_cdar(safexml.parse(xml), xml) if f.fatal]


def rules_of(stage: RulesStage, xml: bytes) -> list[str]:
    return [f.rule for f in stage.check_cdar(safexml.parse(xml), xml) if f.fatal]


# --- every message the gateway can write --------------------------------------------------------------------

def notice(status: Status | None, **fields: object) -> StatusNotice:
    values: dict[str, object] = dict(
        message_id="20261020-001-7", status=status, at=AT, invoice_id="20261020-001", invoice_number="CONF-1",
        invoice_issue_date="2026-10-15", invoice_type_code="380", seller_siret="81234567600017",
        buyer_siret=MAIRIE, actor="mairie-exemple", reason_code=None, reason=None, mandate_number=None,
        platform_siren="100000009", supplier="acme", supplier_siren="812345676", platform_matricule="9999")
    return StatusNotice(**(values | fields))  # type: ignore[arg-type]


# Every reason code of the reform, one of the gateway's own that it is not (PJ_ABS), and no code at all: a
# recipient may give any of them (or a text alone) with any status, and the gateway records what it gave.
REASON_CODES = [*sorted(REFORM_REASONS), "PJ_ABS", None]


@pytest.mark.parametrize("status", [*Status, None], ids=lambda s: getattr(s, "name", "PLATFORM_REJECTION_213"))
def test_every_status_with_every_reason_passes_the_xsd_and_br_fr_cdv(stage, status):
    """Each status the gateway tells (213 for a rejection), with each reason it may carry, with and without a text,
    the mandate of MANDATEE: the CDAR passes the XSD and every fatal BR-FR-CDV rule, the reason code it carries
    being one the reform allows with that status."""
    failed, written = {}, 0
    mandates = (None, "M-2026-42") if status is Status.MANDATEE else (None,)
    for reason_code, reason, mandate in itertools.product(REASON_CODES, (None, "motif"), mandates):
        try:
            sent = notice(status, reason_code=reason_code, reason=reason, mandate_number=mandate)
        except ValueError:  # a status that needs a reason is never told without one
            continue
        xml = build_cdar(sent)
        written += 1
        if problems := failures(stage, xml):
            failed[(reason_code, reason, mandate)] = problems
        told = safexml.parse(xml).xpath(f"{REFERENCE}/ram:SpecifiedDocumentStatus/ram:ReasonCode/text()",
                                        namespaces=CDAR)
        assert set(told) <= BY_STATUS.get(sent.cdar_code, REFORM_REASONS), (reason_code, told)
    assert written >= len(REASON_CODES) and failed == {}


def test_a_rejection_of_an_unreadable_invoice_passes(stage):
    """213 for an invoice read without number, date, type the reform knows or seller, from an account holding a
    SIRET or none."""
    for supplier_siren in ("812345676", None):
        sent = notice(None, invoice_number=None, invoice_issue_date=None, invoice_type_code="999", seller_siret=None,
                      buyer_siret=None, reason_code="REJ_SEMAN", reason="XSD: ...", supplier_siren=supplier_siren)
        assert failures(stage, build_cdar(sent)) == []


def flow_notice(findings: list[Finding], supplier_siren: str | None = "812345676") -> FlowNotice:
    return FlowNotice(message_id="F-lifecycle", flow_id="20261020093000000000-abcdef", original_name="facture 1.xml",
                      received_at=AT, at=AT, reasons=tuple(receivability.irrecevable(findings)), supplier="acme",
                      supplier_siren=supplier_siren, platform_siren="100000009", platform_matricule="9999")


# The gateway's rules that refuse a flow for its admissibility, and the IRR_* code each is told by.
FLOW_REFUSALS = {"IRR_VIDE_F": "IRR_VIDE_F", "IRR_TYPE_F": "IRR_TYPE_F", "IRR_SYNTAX": "IRR_SYNTAX",
                 "IRR_TAILLE_F": "IRR_TAILLE_F", "IRR_ARCHIVE_F": "IRR_SYNTAX", "FLOW-NAME-INVALID": "IRR_NOM_F",
                 "FX-NO-XML": "IRR_TYPE_F", "FX-NOT-CII": "IRR_TYPE_F", "IRR_NOM_F": "IRR_NOM_F",
                 "IRR_EXT_DOC": "IRR_EXT_DOC"}


@pytest.mark.parametrize("rule", sorted(FLOW_REFUSALS))
def test_every_irrecevable_flow_passes_with_its_irr_reason(stage, rule):
    """501 Irrecevable for each flow refusal, with the IRR_* code BR-FR-CDV allows (the gateway's rule heading the
    text where the reform names it otherwise), from an account holding a SIRET or none."""
    for supplier_siren in ("812345676", None):
        xml = build_flow_cdar(flow_notice([Finding(stage="admissibility", rule=rule, message="refusé")],
                                          supplier_siren))
        assert failures(stage, xml) == []
        reference = safexml.parse(xml).find(REFERENCE, CDAR)
        assert reference.findtext("ram:ProcessConditionCode", namespaces=CDAR) == "501"
        assert reference.findtext("ram:SpecifiedDocumentStatus/ram:ReasonCode", namespaces=CDAR) == FLOW_REFUSALS[rule]
        expected = "refusé" if rule == FLOW_REFUSALS[rule] else f"{rule}: refusé"
        assert reference.findtext("ram:SpecifiedDocumentStatus/ram:Reason", namespaces=CDAR) == expected


def test_a_receivable_flow_and_one_refused_for_several_reasons_pass(stage):
    """500 for a flow refused for no reason of admissibility (a duplicate is received and readable); 501 with one
    status detail per reason."""
    duplicate = [Finding(stage="admissibility", rule="FLOW-DUPLICATE", message="same content")]
    xml = build_flow_cdar(flow_notice(duplicate))
    assert failures(stage, xml) == []
    assert safexml.parse(xml).xpath(f"{REFERENCE}/ram:ProcessConditionCode/text()", namespaces=CDAR) == ["500"]
    several = [Finding(stage="admissibility", rule="IRR_VIDE_F", message="vide"),
               Finding(stage="admissibility", rule="IRR_ARCHIVE_F", message="bombe"),
               Finding(stage="admissibility", rule="IRR_SYNTAX", message="a warning", severity="warning")]
    xml = build_flow_cdar(flow_notice(several))
    assert failures(stage, xml) == []
    details = safexml.parse(xml).xpath(f"{REFERENCE}/ram:SpecifiedDocumentStatus", namespaces=CDAR)
    assert [(d.findtext("ram:ReasonCode", namespaces=CDAR), d.findtext("ram:SequenceNumeric", namespaces=CDAR))
            for d in details] == [("IRR_VIDE_F", "1"), ("IRR_SYNTAX", "2")]


def test_names_with_markup_quotes_and_carriage_returns_pass_and_read_back(stage):
    """An account holding no SIRET is addressed by its name, and a flow is named by its file: <, &, quotes, ]]> and
    a carriage return in either leave the message conformant, and read back as they were given."""
    account, name = 'Dupont & "Fils" <SARL>', "devis l'été ]]> v1\r\n.xml"
    invoice_cdar = build_cdar(notice(Status.REJETEE, reason_code="DOUBLON", reason=name, supplier=account,
                                     seller_siret=None, supplier_siren=None))
    flow_cdar = build_flow_cdar(FlowNotice(
        message_id="F-l", flow_id="F1", original_name=name, received_at=AT, at=AT, supplier=account,
        reasons=tuple(receivability.irrecevable([Finding(stage="admissibility", rule="IRR_NOM_F", message=name)])),
        supplier_siren=None, platform_siren="100000009", platform_matricule="9999"))
    for xml in (invoice_cdar, flow_cdar):
        assert failures(stage, xml) == []
        document = safexml.parse(xml)
        assert document.xpath("rsm:ExchangedDocument/ram:RecipientTradeParty//ram:URIID/text()",
                              namespaces=CDAR) == [account]
        assert document.xpath(f"{REFERENCE}/ram:SpecifiedDocumentStatus/ram:Reason/text()", namespaces=CDAR) == [name]
    assert safexml.parse(flow_cdar).xpath(f"{REFERENCE}/ram:Name/text()", namespaces=CDAR) == [name]


@pytest.mark.parametrize(("edit", "rule"), [
    (lambda doc: _remove(doc, "rsm:ExchangedDocument/ram:RecipientTradeParty/ram:URIUniversalCommunication"),
     "BR-FR-CDV-08_MDT-73"),
    (lambda doc: _set(doc, f"{REFERENCE}/ram:SpecifiedDocumentStatus/ram:ReasonCode", "SIRET_ERR"),
     "BR-FR-CDV-CL-09_MDT-113_210B2G"),
    (lambda doc: _remove(doc, f"{REFERENCE}/ram:SpecifiedDocumentStatus/ram:ReasonCode"), "BR-FR-CDV-15_MDT-113"),
    (lambda doc: _set(doc, "rsm:AcknowledgementDocument/ram:TypeCode", "380"), "BR-FR-CDV-09_MDT-77"),
    (lambda doc: _remove(doc, "rsm:ExchangedDocument/ram:RecipientTradeParty"), "XSD"),
], ids=["no-address", "refusal-reason", "no-reason-code", "type-code", "no-recipient"])
def test_the_check_catches_what_the_artefacts_forbid(stage, edit, rule):
    """The checking itself can fail: a conformant 210 broken in one place fails with that rule."""
    document = safexml.parse(build_cdar(notice(Status.REJETEE, reason_code="DOUBLON", reason="motif")))
    assert failures(stage, etree.tostring(document)) == []
    edit(document)
    assert rule in rules_of(stage, etree.tostring(document))


def _remove(document: etree._Element, path: str) -> None:
    element = document.xpath(path, namespaces=CDAR)[0]
    element.getparent().remove(element)


def _set(document: etree._Element, path: str, text: str) -> None:
    document.xpath(path, namespaces=CDAR)[0].text = text


# --- through a running gateway ------------------------------------------------------------------------------

@pytest.fixture
def database_url() -> None:
    """SQLite only: what is checked here is the files written, which no database changes."""
    return None


@pytest.fixture
def judged(app, stage):
    """A gateway running in this process, its rules stage judging CDARs with the installed artefacts."""
    with running_with(app, stage) as gateway:
        yield gateway


def _flow_id(root: Path, account: str, name: str) -> str:
    return wait_report(root, account, name).findtext("r:flow/r:flowId", namespaces=REPORT_NS)


def _lifecycle(root: Path, account: str, name: str) -> etree._Element:
    """The 500/501 of the flow account dropped as name, once delivered."""
    path = outbox(root, account) / f"{_flow_id(root, account, name)}{LIFECYCLE}"
    wait_for(path.exists, 20, f"the flow lifecycle of {name}")
    return etree.parse(str(path)).getroot()


def _told(document: etree._Element) -> tuple[str, list[str | None]]:
    reference = document.find(REFERENCE, CDAR)
    details = reference.findall("ram:SpecifiedDocumentStatus", CDAR)
    return (reference.findtext("ram:ProcessConditionCode", namespaces=CDAR),
            [detail.findtext("ram:ReasonCode", namespaces=CDAR) for detail in details])


def _invoice_id(config: Path, number: str) -> str:
    return next(i.id for i in rows(config, Invoice) if i.number == number and i.status)


def test_flows_are_told_500_or_501_beside_their_ack_and_report(config_file, judged):
    """A good file gets 500, an empty one 501 IRR_VIDE_F, one that is not XML 501 IRR_SYNTAX, each beside the
    flow's acknowledgement and report in the supplier's out/; an account reading another format gets none."""
    root = config_file.parent
    drop(root, "acme", "good.xml", renumber(UBL_OK, "LIFE-1"))
    drop(root, "acme", "empty.xml", b"")
    drop(root, "acme", "not-xml.xml", b"this is not XML\n")
    told = {name: _told(_lifecycle(root, "acme", name)) for name in ("good.xml", "empty.xml", "not-xml.xml")}
    assert told == {"good.xml": ("500", []), "empty.xml": ("501", ["IRR_VIDE_F"]),
                    "not-xml.xml": ("501", ["IRR_SYNTAX"])}
    flow_id = _flow_id(root, "acme", "empty.xml")
    assert {p.name for p in outbox(root, "acme").glob(f"{flow_id}.*")} == {
        f"{flow_id}.ack.xml", f"{flow_id}.report.xml", f"{flow_id}{LIFECYCLE}"}
    document = _lifecycle(root, "acme", "empty.xml")
    reference = document.find(REFERENCE, CDAR)
    assert (reference.findtext("ram:IssuerAssignedID", namespaces=CDAR),
            reference.findtext("ram:Name", namespaces=CDAR)) == (flow_id, "empty.xml")
    assert failures(judged.app.rules, etree.tostring(document)) == []
    shown = json.loads(cli(config_file, "flows", "show", flow_id, "--json"))
    assert [(e["code"], e["reasons"]) for e in shown["events"] if e["kind"] == "flow_lifecycle_told"] == [
        ("501", ["IRR_VIDE_F"])]

    cli(config_file, "accounts", "add", "acme", "--update", "--role", "supplier", "--status-format", "gateway")
    drop(root, "acme", "empty-again.xml", b" ")
    other = _flow_id(root, "acme", "empty-again.xml")  # its report written: its status-returns were made before
    assert not (outbox(root, "acme") / f"{other}{LIFECYCLE}").exists()


def test_a_running_gateway_writes_only_conformant_cdars(config_file, app, judged):
    """Deposit, delivery, every answer a public buyer gives (the 204s with their comment, mandate, payment,
    suspension, completion, refusal by text alone, recycling withdrawn), rejections at integration (XSD,
    duplicate) and the flows' lifecycle: every CDAR the supplier receives passes the XSD and BR-FR-CDV."""
    root = config_file.parent
    numbers = ("RUN-1", "RUN-2", "RUN-3")
    for number in numbers:
        drop(root, "acme", f"{number}.xml", renumber(UBL_OK, number))
        wait_report(root, "acme", f"{number}.xml")
    drop(root, "acme", "xsd.xml", renumber(UBL_XSD_INVALID, "RUN-X"))
    drop(root, "acme", "again.xml", readdress(renumber(UBL_OK, "RUN-1"), MAIRIE, None, note="again"))
    run1, run2, run3 = (_invoice_id(config_file, number) for number in numbers)
    wait_for(lambda: all(i.status == Status.MISE_A_DISPOSITION.value for i in rows(config_file, Invoice)
                         if i.number in numbers), 20, "the three invoices made available")

    def recipient_sets(invoice_id: str, status: Status, **reason: str) -> None:
        change_status(app, invoice_id, status, "mairie-exemple", recipient="mairie-exemple", **reason)

    for status in (Status.SERVICE_FAIT, Status.MANDATEE, Status.MISE_A_DISPOSITION_COMPTABLE, Status.COMPTABILISEE,
                   Status.MISE_EN_PAIEMENT):
        recipient_sets(run1, status, **({"mandate_number": "M-2026-42"} if status is Status.MANDATEE else {}))
    recipient_sets(run2, Status.SUSPENDUE, reason_code="JUSTIF_ABS", reason="bon de commande manquant")
    drop(root, "acme", "completed.xml", readdress(renumber(UBL_OK, "RUN-2"), MAIRIE, None, note="complétée"))
    wait_for(lambda: next(i for i in rows(config_file, Invoice) if i.id == run2).status == Status.COMPLETEE.value,
             20, "the suspended invoice completed")
    recipient_sets(run2, Status.REJETEE, reason="refus en texte seul")
    recipient_sets(run3, Status.A_RECYCLER, reason_code="SIRET_ERR", reason="SIRET du service")

    def written() -> list[Path]:
        return files(outbox(root, "acme"), ".cdar.xml")

    expected = {"200", "203", "204", "208", "209", "210", "211", "213", "500"}
    wait_for(lambda: expected <= {_told(etree.parse(str(p)).getroot())[0] for p in written()}, 30,
             "every code told")
    wait_for(lambda: len(files(outbox(root, "acme"), ".report.xml")) == 6, 20, "the six reports")
    failed = {p.name: problems for p in written() if (problems := failures(app.rules, p.read_bytes()))}
    assert failed == {}
    refused = [_told(etree.parse(str(p)).getroot()) for p in written() if ".status-" in p.name]
    assert ("210", ["DEST_ERR"]) in refused and ("210", ["NON_CONFORME"]) in refused
    rejections = sorted(_told(etree.parse(str(p)).getroot())[1][0] for p in files(outbox(root, "acme"),
                                                                                   ".rejected.cdar.xml"))
    assert rejections == ["REJ_SEMAN", "REJ_UNI"]


def _recipient_cdar(number: str, code: str = "204", reason: str | None = None) -> bytes:
    """The sample recipient CDAR about invoice number; with code 210, refusing it for the reason given as a text
    alone (no ReasonCode: what BR-FR-CDV-15 forbids)."""
    document = safexml.parse(RECIPIENT_CDAR)
    reference = document.find(REFERENCE, CDAR)
    reference.find("ram:IssuerAssignedID", CDAR).text = number
    if code != "204":
        for element in reference.iter(f"{{{CDAR['ram']}}}ProcessConditionCode"):
            element.text = code
        reference.find("ram:ProcessCondition", CDAR).text = "Refusée"
        detail = reference.find("ram:SpecifiedDocumentStatus", CDAR)
        detail.remove(detail.find("ram:IncludedNote", CDAR))
        text = etree.Element(f"{{{CDAR['ram']}}}Reason")
        text.text = reason
        detail.insert(0, text)
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


def _errors(report: etree._Element) -> list[str]:
    return report.xpath("r:errors/r:error/r:rule/text()", namespaces=REPORT_NS)


def test_a_recipient_cdar_is_checked_before_it_is_applied(config_file, judged):
    """A recipient's CDAR breaking a fatal BR-FR-CDV rule is refused, the rule id in its report as an invoice's
    would be, and the invoice keeps its status; one breaking the XSD is refused by it; a conformant one applies.
    Each of the recipient's flows gets its 500 (received and readable: its report says why it was refused)."""
    root = config_file.parent
    drop(root, "acme", "chk.xml", renumber(UBL_OK, "CHK-1"))
    wait_report(root, "acme", "chk.xml")
    invoice = wait_for(lambda: next((i for i in rows(config_file, Invoice) if i.number == "CHK-1"
                                     and i.status == Status.MISE_A_DISPOSITION.value), None), 20, "delivery")

    drop(root, "mairie-exemple", "refuse.xml", _recipient_cdar("CHK-1", "210", "refusée sans code"))
    report = wait_report(root, "mairie-exemple", "refuse.xml")
    assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INCIDENTE"
    assert _errors(report) == ["BR-FR-CDV-15_MDT-113"]
    broken = _recipient_cdar("CHK-1").replace(b"<ram:Name>", b"<ram:Unknown/><ram:Name>", 1)
    drop(root, "mairie-exemple", "broken.xml", broken)
    assert set(_errors(wait_report(root, "mairie-exemple", "broken.xml"))) == {"XSD"}
    assert next(i for i in rows(config_file, Invoice) if i.id == invoice.id).status == Status.MISE_A_DISPOSITION.value

    drop(root, "mairie-exemple", "taken.xml", _recipient_cdar("CHK-1"))
    report = wait_report(root, "mairie-exemple", "taken.xml")
    assert (report.findtext("r:flow/r:state", namespaces=REPORT_NS), _errors(report)) == ("INTEGRE", [])
    assert next(i for i in rows(config_file, Invoice) if i.id == invoice.id).status == Status.SERVICE_FAIT.value
    for name in ("refuse.xml", "broken.xml", "taken.xml"):
        assert _told(_lifecycle(root, "mairie-exemple", name)) == ("500", [])


# --- installing the artefacts, and running without them -----------------------------------------------------

def _gateway(config: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(config), *args], catch_exceptions=False)


def _listed(config: Path) -> dict[str, dict]:
    return {row["name"]: row for row in json.loads(_gateway(config, "rules", "list", "--json").stdout)}


def _zip_of(folder: Path, path: Path, under: str = "france-rfe-cdar") -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, f"{under}/{file.relative_to(folder).as_posix()}")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("given", ["folder", "zip"])
def test_rules_install_takes_the_artefact_set_with_its_version_and_hash(tmp_path, given):
    """The folder, or a zip of it, installs the XSD (with the schemas it imports) and BR-FR-CDV, each known as
    release 1.4.0.01 by its SHA-256; --sha256 checks what was given (a folder by its files' hashes)."""
    config = write_config(tmp_path, {"validate": {"packs_dir": str(tmp_path / "packs"), "processes": 1}})
    source = ARTEFACTS if given == "folder" else _zip_of(ARTEFACTS, tmp_path / "france-rfe-cdar.zip")
    digest = folder_sha256(ARTEFACTS) if given == "folder" else _sha256(source)
    assert _listed(config)["br-fr-cdv"]["status"] == "not installed (gateway rules install FOLDER|ZIP)"
    wrong = _gateway(config, "rules", "install", str(source), "--sha256", "0" * 64)
    assert wrong.exit_code == 1 and "SHA-256 mismatch" in wrong.output
    result = _gateway(config, "rules", "install", str(source), "--sha256", digest)
    assert result.exit_code == 0, result.output
    listed = _listed(config)
    xslt = ARTEFACTS / "2xslt" / "BR-FR-CDV-Schematron-CDAR.xslt"
    xsd = ARTEFACTS / "1xsd-CDAR_D22B_uncoupled" / "CrossDomainAcknowledgementAndResponse_100pD22B.xsd"
    for name, role, original in (("br-fr-cdv", "br-fr-cdv", xslt), ("cdar-d22b", "cdar-xsd", xsd)):
        row = listed[name]
        assert (row["status"], row["version"], row["role"], row["syntax"]) == ("ok", "1.4.0.01", role, "cdar")
        assert (row["sha256"], row["origin"], row["origin_sha256"]) == (_sha256(original), source.name, digest)
        assert f"installed {name} 1.4.0.01 sha256 {row['sha256']}" in result.output
    imported = {name for name, _digest in listed["cdar-d22b"]["files"]}
    assert imported == {p.name for p in xsd.parent.glob("*.xsd")} - {xsd.name}


def test_an_installed_schema_whose_import_was_altered_is_refused(tmp_path):
    """Every file of the schema pack is checked against its manifest, not only the main XSD."""
    config = write_config(tmp_path, {"validate": {"packs_dir": str(tmp_path / "packs"), "processes": 1}})
    assert _gateway(config, "rules", "install", str(ARTEFACTS)).exit_code == 0
    imported = next((tmp_path / "packs" / "cdar-d22b").glob("*UnqualifiedDataType*.xsd"))
    imported.write_bytes(imported.read_bytes() + b"<!-- edited -->")
    assert _listed(config)["cdar-d22b"]["status"].startswith(f"SHA-256 mismatch: {imported}")


def test_without_br_fr_cdv_the_xsd_alone_judges(tmp_path):
    """With only the XSD of the set installed, the stage says BR-FR-CDV is missing and judges by the XSD: a CDAR
    breaking a BR-FR-CDV rule passes, one breaking the XSD does not."""
    only_xsd = tmp_path / "xsd-only"
    shutil.copytree(ARTEFACTS / "1xsd-CDAR_D22B_uncoupled", only_xsd / "1xsd-CDAR_D22B_uncoupled")
    assert [p.name for p in install(only_xsd, tmp_path / "packs", try_pack)] == ["cdar-d22b"]
    with capture_logs() as logs:
        stage = RulesStage.from_settings(ValidateSettings(packs_dir=tmp_path / "packs", processes=1))
    said = [e for e in logs if e["event"] == "br_fr_cdv_not_installed"]
    assert [e["cdar_checked_by"] for e in said] == ["the CDAR XSD alone"]
    assert not [e for e in logs if e["event"] == "rule_pack_unusable" and e["pack"] in ("br-fr-cdv", "cdar-d22b")]
    breaking_a_rule = _recipient_cdar("CHK-1", "210", "sans code")
    assert stage.check_cdar(safexml.parse(breaking_a_rule), breaking_a_rule) == []
    breaking_the_xsd = _recipient_cdar("CHK-1").replace(b"<ram:Name>", b"<ram:Unknown/><ram:Name>", 1)
    assert {f.rule for f in stage.check_cdar(safexml.parse(breaking_the_xsd), breaking_the_xsd)} == {"XSD"}


def test_gateway_run_says_once_at_start_that_br_fr_cdv_is_not_installed(tmp_path):
    """`gateway run` without the artefacts logs it once, then works: a flow is received and answered."""
    config = write_config(tmp_path, {"validate": {"packs_dir": str(tmp_path / "packs"), "processes": 1}})
    cli(config, "accounts", "import", str(SAMPLES / "accounts.csv"))
    process = GatewayProcess(config)
    process.start()
    try:
        wait_for(process.started, 120, "the gateway's start")
        drop(tmp_path, "acme", "empty.xml", b"")
        wait_report(tmp_path, "acme", "empty.xml", timeout=60)
    finally:
        assert process.stop() == 0
    lines = [json.loads(line) for line in process.log.read_text().splitlines() if line.startswith("{")]
    said = [e for e in lines if e["event"] == "br_fr_cdv_not_installed"]
    assert [e["cdar_checked_by"] for e in said] == ["the gateway's reading alone: the CDAR XSD is not installed either"]
