"""The reference data each process keeps in memory (gateway.data.reference), on SQLite and PostgreSQL: a directory
import or an account change made by another process (the CLI here) is routed by at the worker's next poll; every
path that writes the directory, the accounts, their SIRETs, subscriptions or endpoints (the CLI, the console, the
API) moves the change counter, and the work on flows and the polls of pull endpoints do not; what is kept is
read once, and read again only once the counter moved."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import event, text

from gateway import config as config_module
from gateway.app import App
from gateway.data.db import make_engine, session_scope
from gateway.data.findings import loads
from gateway.data.models import Flow, Invoice, utcnow
from gateway.data.reference import Reference
from gateway.engine.queue import new_owner
from gateway.engine.worker import Worker
from gateway.ingest.intake import Arrival, intake
from gateway.remote import endpoints
from tests.harness import SAMPLES, cli, outbox, renumber
from tests.sftp_harness import make_key, public
from tests.web_harness import client, web_config, web_gateway

INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()  # from acme to the mairie
SUPPLIER, RECIPIENT, MAIRIE = "acme", "mairie-exemple", "21370999100011"
DIRECTORY = (SAMPLES / "directory.csv").read_text(encoding="utf-8").splitlines()
ACTIVE = 11  # the StructureActive column of a directory row


def _counter(config: Path) -> int:
    engine = make_engine(config_module.load(config).gateway.database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT counter FROM changes WHERE name = 'reference'")).scalar_one()
    finally:
        engine.dispose()


def _mairie_directory(tmp_path: Path, active: bool) -> Path:
    """A directory export holding the mairie only, active or not."""
    row = next(line for line in DIRECTORY if f";{MAIRIE};" in line).split(";")
    row[ACTIVE] = "true" if active else "false"
    path = tmp_path / f"mairie-{active}.csv"
    path.write_text("\n".join([DIRECTORY[0], ";".join(row)]) + "\n", encoding="utf-8")
    return path


def _judged(app: App, worker: Worker, number: str) -> tuple[str, list[str], str]:
    """An invoice numbered number deposited by acme, as the worker's polls leave it: its flow's state, the fatal
    rules of its invoice and the invoice's id."""
    staged = app.settings.gateway.data_dir / "staged"
    staged.mkdir(exist_ok=True)
    path = staged / f"{number}.xml"
    path.write_bytes(renumber(INVOICE, number))
    flow = intake(app, path, Arrival(SUPPLIER, path.name, "zone"))
    while worker.run_once():
        pass
    with session_scope(app.engine, write=False) as session:
        state = session.get(Flow, flow.id).state.value
        invoice = session.get(Invoice, f"{flow.id}-001")
        return state, [f.rule for f in loads(invoice.findings) if f.fatal], invoice.id


def _status_returns(root: Path, invoice_id: str) -> list[str]:
    """What acme received about its invoice: the tags and suffixes of the status-returns' names."""
    return sorted(re.sub(r"status-\d+", "status-N", path.name.removeprefix(f"{invoice_id}."))
                  for path in outbox(root, SUPPLIER).glob(f"{invoice_id}.*"))


def test_a_directory_import_by_another_process_is_routed_by_at_the_next_poll(app, config_file, rules_stage,
                                                                             tmp_path):
    app.rules = rules_stage
    app.reference = Reference(app.engine, horizon=3600.0)  # seen by the worker's polls alone, not by time
    worker = Worker(app, new_owner())
    assert _judged(app, worker, "REF-DIR-1")[:2] == ("INTEGRE", [])
    before = _counter(config_file)

    cli(config_file, "directory", "import", str(_mairie_directory(tmp_path, active=False)))
    assert _counter(config_file) > before
    assert _judged(app, worker, "REF-DIR-2")[:2] == ("REJETE", ["DIR-STRUCTURE-INACTIVE"])

    cli(config_file, "directory", "import", str(_mairie_directory(tmp_path, active=True)))
    assert _judged(app, worker, "REF-DIR-3")[:2] == ("INTEGRE", [])


def test_an_account_role_and_format_changed_by_another_process_are_used_at_the_next_poll(app, config_file,
                                                                                         rules_stage):
    app.rules = rules_stage
    app.reference = Reference(app.engine, horizon=3600.0)  # seen by the worker's polls alone, not by time
    worker = Worker(app, new_owner())
    state, rules, first = _judged(app, worker, "REF-ACC-1")
    assert (state, rules) == ("INTEGRE", [])
    assert _status_returns(config_file.parent, first) == ["status-N.cdar.xml"] * 2  # DEPOSEE, MISE_A_DISPOSITION

    cli(config_file, "accounts", "add", RECIPIENT, "--update", "--role", "supplier")
    cli(config_file, "accounts", "add", SUPPLIER, "--update", "--role", "supplier", "--status-format", "gateway")
    state, rules, second = _judged(app, worker, "REF-ACC-2")
    assert (state, rules) == ("REJETE", ["DIR-NO-RECIPIENT"])  # the mairie receives no more
    assert _status_returns(config_file.parent, second) == ["rejected.status.xml"]  # its 213, in the new format

    cli(config_file, "accounts", "add", RECIPIENT, "--update", "--role", "recipient")
    assert _judged(app, worker, "REF-ACC-3")[:2] == ("INTEGRE", [])


def test_every_path_writing_reference_data_moves_the_counter_and_flows_and_polls_do_not(app, config_file,
                                                                                       rules_stage, tmp_path):
    config = config_file
    key = make_key(tmp_path / "remote_key")
    host_key = " ".join(public(key).read_text().split()[:2])  # the key line without its comment
    sftp = "sftp://gw@127.0.0.1:2022/inbox"
    services = tmp_path / "services.csv"
    services.write_text("Identifiant;CodeService;NomService;Actif;EngagementObligatoire;DateDebut;DateFin\n"
                        f"{MAIRIE};REF-SERV;Service de test;true;false;;\n", encoding="utf-8")
    accounts = tmp_path / "accounts.csv"
    accounts.write_text("name;role;sirets\nref-imported;recipient;19370998700013\n", encoding="utf-8")
    writes = {
        "directory import": ["directory", "import", str(_mairie_directory(tmp_path, active=True))],
        "directory import --services": ["directory", "import", str(_mairie_directory(tmp_path, active=True)),
                                        "--services", str(services)],
        "accounts add": ["accounts", "add", "ref-new", "--role", "supplier", "--siret", "35600000000048"],
        "accounts add --update (format)": ["accounts", "add", "ref-new", "--update", "--role", "supplier",
                                           "--status-format", "peppol"],
        "accounts add --update (role)": ["accounts", "add", "ref-new", "--update", "--role", "recipient"],
        "accounts add --update (SIRET)": ["accounts", "add", "ref-new", "--update", "--role", "recipient",
                                          "--siret", "35600000049837"],
        "accounts import": ["accounts", "import", str(accounts)],
        "accounts disable": ["accounts", "disable", "ref-new"],
        "accounts disable --enable": ["accounts", "disable", "ref-new", "--enable"],
        "accounts remote --push": ["accounts", "remote", "ref-new", "--push", sftp, "--key", str(key),
                                   "--host-key", host_key],
        "accounts remote --pull": ["accounts", "remote", "ref-new", "--pull", sftp, "--key", str(key),
                                   "--host-key", host_key],
        "accounts remote --push (changed)": ["accounts", "remote", "ref-new", "--push", sftp + "/other",
                                             "--key", str(key), "--host-key", host_key],
        "accounts remote --remove": ["accounts", "remote", "ref-new", "--remove", "push"],
        "accounts notify --email": ["accounts", "notify", "ref-new", "--email", "ops@example.org"],
    }
    for what, args in writes.items():
        before = _counter(config)
        cli(config, *args)
        assert _counter(config) > before, what
    listed = cli(config, "accounts", "notify", "ref-new", "--list")
    subscription = re.search(r"^\s*(\d+)\s", listed.splitlines()[-1]).group(1)
    before = _counter(config)
    cli(config, "accounts", "notify", "ref-new", "--remove", subscription)
    assert _counter(config) > before, "accounts notify --remove"

    unchanged = _counter(config)
    cli(config, "accounts", "token", SUPPLIER)
    cli(config, "operators", "add", "ref-ops", "--password", "ops-password-1")
    app.rules = rules_stage
    assert _judged(app, Worker(app, new_owner()), "REF-CNT-1")[:2] == ("INTEGRE", [])
    owner = new_owner()
    polled = endpoints.claim_pull(app.engine, owner, 30.0, utcnow())
    assert polled is not None and polled.account == "ref-new"
    polled.listing = json.dumps({"a.xml": [1, 2]})
    endpoints.save_listing(app.engine, polled)
    endpoints.release_pull(app.engine, polled, owner, utcnow() + timedelta(seconds=60))
    assert _counter(config) == unchanged  # tokens, operators, flows and pull polls are not reference data


def test_the_console_and_the_api_writing_reference_data_move_the_counter(tmp_path):
    """On SQLite only: the console and the API write through the functions the CLI calls, whose writes the
    previous test sees counted on both databases."""
    config = web_config(tmp_path)
    cli(config, "operators", "add", "ref-ops", "--password", "ops-password-1")
    cli(config, "accounts", "add", SUPPLIER, "--update", "--role", "supplier", "--password", "acme-password-1")
    bearer = cli(config, "accounts", "token", SUPPLIER).strip()
    structures = _mairie_directory(tmp_path, active=True)

    def moves(what: str, post, expected: int = 303) -> None:
        before = _counter(config)
        answer = post()
        assert answer.status_code == expected, (what, answer.text[:500])
        assert _counter(config) > before, what

    with web_gateway(config, "--role", "web") as (_process, url):
        with _console(url, "ref-ops", "ops-password-1") as (operator, csrf):
            moves("console account added", lambda: operator.post("/console/accounts", data={
                "csrf": csrf, "name": "ref-console", "role": "supplier", "sirets": "35600000000048", "password": ""}))
            moves("console account disabled", lambda: operator.post(
                "/console/accounts/ref-console/disable", data={"csrf": csrf, "disabled": "1"}))
            moves("console directory upload", lambda: operator.post(
                "/console/directory/import", data={"csrf": csrf},
                files={"structures": (structures.name, structures.read_bytes(), "text/csv")}), expected=200)
        with _console(url, SUPPLIER, "acme-password-1") as (account, csrf):
            moves("console subscription added", lambda: account.post("/console/notifications", data={
                "csrf": csrf, "kind": "email", "target": "acme@example.org"}), expected=200)
            listed = cli(config, "accounts", "notify", SUPPLIER, "--list").splitlines()[-1]
            subscription = re.search(r"^\s*(\d+)\s", listed).group(1)
            moves("console subscription removed", lambda: account.post(
                f"/console/notifications/{subscription}/remove", data={"csrf": csrf}))
        with client(url, bearer) as api:
            moves("API subscriptions replaced", lambda: api.put("/api/v1/subscriptions", json={
                "webhooks": [], "emails": [{"address": "acme@example.org"}]}), expected=200)


@contextmanager
def _console(url: str, name: str, password: str) -> Iterator[tuple[httpx.Client, str]]:
    """A console session of name, and its CSRF token."""
    with httpx.Client(base_url=url, timeout=30) as browser:
        form = browser.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        logged = browser.post("/console/login", data={"name": name, "password": password, "csrf": token,
                                                      "next": "/console/"})
        assert logged.status_code == 303, logged.text[:500]
        page = browser.get("/console/")
        yield browser, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


@contextmanager
def _statements(app: App) -> Iterator[list[str]]:
    """The SQL statements app's engine runs meanwhile."""
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(app.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(app.engine, "before_cursor_execute", count)


def _mairie_name(app: App, reference: Reference) -> tuple[str, int]:
    """The mairie's name as reference gives it, and how many statements of the structure table that took."""
    with _statements(app) as seen, session_scope(app.engine, write=False) as session:
        name = reference.structure(session, MAIRIE).name
    return name, sum("FROM structure" in statement for statement in seen)


def _rename_mairie(app: App, name: str, counted: bool) -> None:
    """A change of the mairie's name; one not counted puts the counter back, as if no trigger had seen it."""
    with app.engine.begin() as connection:
        connection.execute(text("UPDATE structure SET name = :name WHERE siret = :siret"),
                           {"name": name, "siret": MAIRIE})
        if not counted:
            connection.execute(text("UPDATE changes SET counter = counter - 1 WHERE name = 'reference'"))


def test_what_is_kept_is_read_once_and_read_again_once_the_counter_moved(app):
    reference = Reference(app.engine, horizon=3600.0)  # a worker's, that polls: refresh() at each poll
    reference.refresh()
    original = _mairie_name(app, reference)[0]
    assert _mairie_name(app, reference) == (original, 0)  # kept

    _rename_mairie(app, "UNCOUNTED", counted=False)
    reference.refresh()
    assert _mairie_name(app, reference) == (original, 0)  # the counter did not move: kept, stale on purpose

    _rename_mairie(app, "COUNTED", counted=True)
    assert _mairie_name(app, reference) == (original, 0)  # not polled yet
    reference.refresh()
    assert _mairie_name(app, reference) == ("COUNTED", 1)  # the poll saw the counter move: read again
    assert _mairie_name(app, reference) == ("COUNTED", 0)

    idle = Reference(app.engine, horizon=0.0)  # a process that does not poll reads the counter at each lookup
    assert _mairie_name(app, idle) == ("COUNTED", 1)
    _rename_mairie(app, "SEEN AT ONCE", counted=True)
    assert _mairie_name(app, idle) == ("SEEN AT ONCE", 1)


def test_a_transaction_writing_reference_data_keeps_nothing_it_reads(app):
    reference = Reference(app.engine, horizon=3600.0)
    reference.refresh()
    try:
        with session_scope(app.engine) as session:
            session.execute(text("UPDATE structure SET name = 'ROLLED BACK' WHERE siret = :siret"), {"siret": MAIRIE})
            assert reference.structure(session, MAIRIE).name == "ROLLED BACK"  # its own write, read...
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    name, read = _mairie_name(app, reference)
    assert (name, read) == ("COMMUNE D'EXEMPLE-SUR-LOIRE", 1)  # ...and not kept
    assert _mairie_name(app, reference) == (name, 0)


def test_at_most_max_kept_values_are_kept(app, monkeypatch):
    monkeypatch.setattr("gateway.data.reference.MAX_KEPT", 3)
    reference = Reference(app.engine, horizon=3600.0)
    reference.refresh()
    unknown = [f"9999999900{n:04d}" for n in range(4)]  # a flood of SIRETs nobody holds
    with session_scope(app.engine, write=False) as session:
        for siret in unknown:
            assert reference.structure(session, siret) is None
    with _statements(app) as seen, session_scope(app.engine, write=False) as session:
        for siret in reversed(unknown):
            reference.structure(session, siret)
    assert sum("FROM structure" in statement for statement in seen) == 1  # the first, dropped for the fourth
