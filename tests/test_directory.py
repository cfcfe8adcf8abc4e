"""Import of the directory export, the services file and the accounts file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session, create_engine, select

from gateway.cli import main
from gateway.data.models import Account, AccountSiret, Role, Service, Structure
from gateway.data.tables import metadata
from gateway.route import (
    DirectoryImportError,
    import_accounts,
    import_services,
    import_structures,
    parse_bool,
)
from gateway.route.directory import SERVICE_COLUMNS, STRUCTURE_COLUMNS
from tests.harness import (
    REPORT_NS,
    cli,
    drop,
    files,
    outbox,
    readdress,
    renumber,
    wait_for,
    wait_report,
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
HEADER = ";".join(STRUCTURE_COLUMNS)
SERVICES_HEADER = ";".join(SERVICE_COLUMNS)
# A structure row with every flag set to a different spelling of its value.
HOSPITAL = (
    "SIRET;1370999300011;CENTRE HOSPITALIER;FAUX;Vrai;oui;NON;o;n;0;false;TRUE;"
    "5 avenue du Parc;Bâtiment B;;1000;Exemple-en-Bresse;0474000000;f@ch.example;FR;France"
)


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    with Session(engine) as session:
        yield session


def write(tmp_path: Path, *lines: str, name: str = "export.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes("\n".join(lines).encode(encoding) + b"\n")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("VRAI", True), ("Oui", True), ("o", True), ("1", True), (" false ", False),
     ("Faux", False), ("NON", False), ("N", False), ("0", False)],
)
def test_parse_bool_accepts_french_and_english(text: str, expected: bool) -> None:
    """Every spelling the export or a spreadsheet may use reads as the right flag."""
    assert parse_bool(text, where="here") is expected


@pytest.mark.parametrize("text", ["", "yes", "2", "vraiment"])
def test_parse_bool_refuses_anything_else(text: str) -> None:
    """An unknown spelling is an error naming where it was found, never a silent False."""
    with pytest.raises(DirectoryImportError, match=r"^here: .* is not a boolean"):
        parse_bool(text, where="here")


def test_structure_columns_map_to_model(session: Session, tmp_path: Path) -> None:
    """Each of the 21 columns lands in its attribute; leading zeros come back."""
    assert import_structures(session, write(tmp_path, HEADER, HOSPITAL)) == 1
    structure = session.get(Structure, "01370999300011")
    assert structure is not None
    assert (structure.id_type, structure.name) == ("SIRET", "CENTRE HOSPITALIER")
    flags = (
        structure.edi_emitter, structure.edi_receiver, structure.reports_payment,
        structure.ej_required, structure.service_required, structure.service_or_ej_required,
        structure.is_moa, structure.is_moa_only, structure.active,
    )
    assert flags == (False, True, True, False, True, False, False, False, True)
    assert (structure.address, structure.address2, structure.address3) == (
        "5 avenue du Parc", "Bâtiment B", "")
    assert (structure.postal_code, structure.city) == ("01000", "Exemple-en-Bresse")
    assert (structure.phone, structure.email) == ("0474000000", "f@ch.example")
    assert (structure.country_code, structure.country) == ("FR", "France")


def test_only_siret_identifiers_are_padded(session: Session, tmp_path: Path) -> None:
    """Zero restoration applies to SIRETs, not to other identifier types."""
    other = HOSPITAL.replace("SIRET;1370999300011", "RIDET;1234567")
    import_structures(session, write(tmp_path, HEADER, other))
    assert session.get(Structure, "1234567") is not None


def row(id_type: str, identifier: str, name: str = "STRUCTURE") -> str:
    """The HOSPITAL row under another type, identifier and name, without its service requirement."""
    return HOSPITAL.replace("SIRET;1370999300011;CENTRE HOSPITALIER", f"{id_type};{identifier};{name}").replace(
        ";oui;NON;o;n;", ";oui;NON;non;n;")


@pytest.mark.parametrize(("written", "stored"), [
    ("1", "SIRET"), ("01", "SIRET"), (" siret ", "SIRET"), ("SIRET", "SIRET"), ("4", "RIDET"), ("RIDET", "RIDET"),
    ("2", "UE_HORS_FRANCE"), ("ue_hors_france", "UE_HORS_FRANCE"), ("3", "HORS_UE"), ("5", "TAHITI"),
    ("7", "PARTICULIER"), ("Particulier", "PARTICULIER"),
])
def test_identifier_type_by_numeric_code_or_name(session: Session, tmp_path: Path, written: str,
                                                 stored: str) -> None:
    """The published export writes TypeIdentifiant as a code (1: SIRET), others as the name: both are
    read, and stored as the name; a SIRET gets its zeros back whichever way its type is written."""
    import_structures(session, write(tmp_path, HEADER, row(written, "1370999300011")))
    [structure] = session.exec(select(Structure)).all()
    expected = "01370999300011" if stored == "SIRET" else "1370999300011"
    assert (structure.id_type, structure.siret) == (stored, expected)


@pytest.mark.parametrize("written", ["9", "0", "SIREN", "", "1.0"])
def test_unknown_identifier_type_is_refused_with_line_and_column(session: Session, tmp_path: Path,
                                                                  written: str) -> None:
    """Anything else refuses the whole file, naming the cell, and nothing is written."""
    path = write(tmp_path, HEADER, row("1", "21370999100011"), row(written, "1370999300011"))
    with pytest.raises(DirectoryImportError,
                       match=rf"export\.csv line 3, column TypeIdentifiant: '{written}' is not an identifier type"):
        import_structures(session, path)
    assert session.exec(select(Structure)).all() == []


def test_empty_identifier_is_refused(session: Session, tmp_path: Path) -> None:
    with pytest.raises(DirectoryImportError, match=r"export\.csv line 2, column Identifiant: no identifier"):
        import_structures(session, write(tmp_path, HEADER, row("1", " ")))


def test_sirets_failing_their_check_are_reported(session: Session, tmp_path: Path) -> None:
    """A SIRET whose check digit fails, or whose stripped zeros would not make a valid SIRET, is imported as
    written and reported with its line and column; valid ones, and other types, are not reported."""
    problems: list[str] = []
    path = write(tmp_path, HEADER, row("1", "21370999100011", "A"), row("SIRET", "21370999100012", "B"),
                 row("1", "1370999300012", "C"), row("4", "1234567", "D"), row("1", "3709980100013", "E"))
    assert import_structures(session, path, problems) == 5
    assert problems == [
        (f"export.csv line {line}, column Identifiant: SIRET {siret!r} fails its check (14 digits, Luhn or "
         "La Poste's rule): imported as written, no invoice can be addressed to it")
        for line, siret in ((3, "21370999100012"), (4, "1370999300012"))
    ]
    assert sorted(session.exec(select(Structure.siret)).all()) == [
        "03709980100013", "1234567", "1370999300012", "21370999100011", "21370999100012"]


def test_la_poste_sirets_are_not_reported(session: Session, tmp_path: Path) -> None:
    """La Poste's establishments follow their own rule (python-stdnum knows it), not Luhn."""
    problems: list[str] = []
    import_structures(session, write(tmp_path, HEADER, row("1", "35600000000048"), row("1", "35600000049837")),
                      problems)
    assert problems == []


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp1252"])
def test_bom_and_cp1252_are_read(session: Session, tmp_path: Path, encoding: str) -> None:
    """A BOM does not spoil the first header; a cp1252 file keeps its accents."""
    import_structures(session, write(tmp_path, HEADER, HOSPITAL, encoding=encoding))
    structure = session.get(Structure, "01370999300011")
    assert structure is not None and structure.address2 == "Bâtiment B"


def test_reimport_updates_rows(session: Session, tmp_path: Path) -> None:
    """A second import of the same SIRET updates the row instead of failing or duplicating."""
    import_structures(session, write(tmp_path, HEADER, HOSPITAL))
    renamed = HOSPITAL.replace("CENTRE HOSPITALIER", "CH RENOMMÉ").replace(";TRUE;", ";false;")
    import_structures(session, write(tmp_path, HEADER, renamed))
    rows = session.exec(select(Structure)).all()
    assert [(s.name, s.active) for s in rows] == [("CH RENOMMÉ", False)]


def test_repeated_siret_last_row_wins(session: Session, tmp_path: Path) -> None:
    """A SIRET listed twice in one file is one structure, as its last row says."""
    renamed = HOSPITAL.replace("CENTRE HOSPITALIER", "CH RENOMMÉ")
    assert import_structures(session, write(tmp_path, HEADER, HOSPITAL, renamed)) == 2
    assert [s.name for s in session.exec(select(Structure)).all()] == ["CH RENOMMÉ"]


def test_wrong_column_count_names_the_line(session: Session, tmp_path: Path) -> None:
    """A short row is refused with its line number, and nothing is written."""
    path = write(tmp_path, HEADER, HOSPITAL, "", HOSPITAL.rsplit(";", 2)[0])
    with pytest.raises(DirectoryImportError, match=r"export\.csv line 4: 19 columns, expected 21"):
        import_structures(session, path)
    assert session.exec(select(Structure)).all() == []


def test_bad_boolean_names_line_and_column(session: Session, tmp_path: Path) -> None:
    """The error points at the cell to fix."""
    path = write(tmp_path, HEADER, HOSPITAL.replace(";TRUE;", ";peut-être;"))
    with pytest.raises(DirectoryImportError, match=r"export\.csv line 2, column StructureActive"):
        import_structures(session, path)


def test_wrong_header_is_refused(session: Session, tmp_path: Path) -> None:
    """A services file given as the directory is recognised by its header."""
    with pytest.raises(DirectoryImportError, match="line 1: header"):
        import_structures(session, write(tmp_path, SERVICES_HEADER))


def test_services_import(session: Session, tmp_path: Path) -> None:
    """Services get their flags, dates and restored SIRET; a re-import updates them."""
    import_structures(session, write(tmp_path, HEADER, HOSPITAL))
    rows = ["1370999300011;PHARMA;Pharmacie;oui;non;2024-01-01;", "1370999300011;ARCH;Archives;0;1;;2020-12-31"]
    assert import_services(session, write(tmp_path, SERVICES_HEADER, *rows, name="s.csv")) == 2
    import_services(session, write(tmp_path, SERVICES_HEADER, rows[0].replace("Pharmacie", "PUI"), name="s.csv"))
    services = session.exec(select(Service).order_by(Service.code)).all()
    assert [(s.siret, s.code, s.name, s.active, s.ej_required, s.start_date, s.end_date) for s in services] == [
        ("01370999300011", "ARCH", "Archives", False, True, None, "2020-12-31"),
        ("01370999300011", "PHARMA", "PUI", True, False, "2024-01-01", None),
    ]


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ("21370999100011;X;X;true;false;;", "column Identifiant: structure 21370999100011 is not in the directory"),
        ("1370999300011;X;X;true;false;01/02/2024;", "column DateDebut: '01/02/2024' is not a date"),
        ("1370999300011;X;X;actif;false;;", "column Actif: 'actif' is not a boolean"),
    ],
)
def test_bad_service_rows(session: Session, tmp_path: Path, row: str, error: str) -> None:
    """Unknown structures, bad dates and bad flags are refused with their line."""
    import_structures(session, write(tmp_path, HEADER, HOSPITAL))
    with pytest.raises(DirectoryImportError, match=f"s.csv line 2, {error}"):
        import_services(session, write(tmp_path, SERVICES_HEADER, row, name="s.csv"))


def test_accounts_import_replaces_sirets(session: Session, tmp_path: Path) -> None:
    """An account's SIRETs are those of the last import; the role is checked."""
    import_accounts(session, write(tmp_path, "name;role;sirets", "ch;recipient;1370999300011,21370999100011"))
    import_accounts(session, write(tmp_path, "name;role;sirets", "ch;Recipient;1370999300011"))
    account = session.get(Account, "ch")
    assert account is not None and account.role is Role.RECIPIENT
    assert session.exec(select(AccountSiret.siret)).all() == ["01370999300011"]
    with pytest.raises(DirectoryImportError, match="line 2, column role: 'boss' is not supplier or recipient"):
        import_accounts(session, write(tmp_path, "name;role;sirets", "x;boss;"))


def test_samples_import(session: Session) -> None:
    """The sample files import whole, the spreadsheet-stripped SIRET included."""
    assert import_structures(session, SAMPLES / "directory.csv") == 8
    assert import_services(session, SAMPLES / "services.csv") == 8
    assert import_accounts(session, SAMPLES / "accounts.csv") == 8
    assert session.get(Structure, "01370999300011") is not None
    assert session.get(Service, ("01370999300011", "DECHETS")) is not None
    assert session.get(AccountSiret, ("cc-pays-exemple", "01370999300011")) is not None


# ---------------------------------------------------------------- the published export, through the gateway

def test_published_export_routes_an_invoice_to_a_structure_it_stripped(config_file, running) -> None:
    """An export written as the published file is (numeric types, a SIRET whose leading zero a spreadsheet
    stripped, a non-SIRET row, a SIRET failing its check) imports with the bad SIRET reported, and an
    invoice to the stripped structure reaches the account holding it."""
    root = config_file.parent
    export = write(root, HEADER, row("1", "3709980100013", "LYCEE DU ZERO"),
                   row("4", "1234567", "STRUCTURE CALEDONIENNE"), row("1", "21370999100012", "SIRET FAUX"))
    result = CliRunner().invoke(main, ["--config", str(config_file), "directory", "import", str(export)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported 3 structures (1 with a SIRET failing its check), 0 services\n"
    assert result.stderr.splitlines() == [
        (f"warning: {export.name} line 4, column Identifiant: SIRET '21370999100012' fails its check (14 digits, "
         "Luhn or La Poste's rule): imported as written, no invoice can be addressed to it")]
    shown = json.loads(cli(config_file, "directory", "show", ZERO_SIRET, "--json"))
    assert (shown["siret"], shown["id_type"], shown["name"]) == (ZERO_SIRET, "SIRET", "LYCEE DU ZERO")
    assert json.loads(cli(config_file, "directory", "show", "1234567", "--json"))["id_type"] == "RIDET"
    cli(config_file, "accounts", "add", "lycee-zero", "--role", "recipient", "--siret", ZERO_SIRET)

    invoice = readdress(renumber((SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes(), "ZERO-1"), ZERO_SIRET, None)
    drop(root, "acme", "zero.xml", invoice)
    report = wait_report(root, "acme", "zero.xml")
    assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INTEGRE", \
        report.xpath("//r:error/r:rule/text()", namespaces=REPORT_NS)
    assert report.findtext("r:invoices/r:invoice/r:recipient", namespaces=REPORT_NS) == "lycee-zero"
    invoice_id = report.findtext("r:invoices/r:invoice/r:invoiceId", namespaces=REPORT_NS)
    delivered = wait_for(lambda: [p for p in files(outbox(root, "lycee-zero"), ".xml")], what="the delivery")
    assert [p.name for p in delivered] == [f"{invoice_id}.xml"] and delivered[0].read_bytes() == invoice


ZERO_SIRET = "03709980100013"  # written 3709980100013 in the export
