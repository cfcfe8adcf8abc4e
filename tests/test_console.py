"""The browser console against a real `gateway run`, in a real headless Chromium: a supplier deposits a flow
and watches its report appear, searches, opens an invoice and downloads it; a recipient suspends an invoice
and its supplier sees why on the dashboard. Security: other accounts' pages are not found, markup in
numbers, names and file names stays text, forms need their CSRF token, a session ends at logout and when
idle, failed logins are throttled."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import update
from sqlmodel import Session, select

from gateway import config as config_module
from gateway.data import views
from gateway.data.db import make_engine
from gateway.data.models import Verdict, WebSession, utcnow
from gateway.data.views import OPERATOR as OPERATOR_VIEW
from gateway.data.views import Viewer
from gateway.lifecycle.service import change_status
from gateway.lifecycle.statuses import Status
from tests.browser_harness import screenshot
from tests.harness import SAMPLES, GatewayProcess, cli, drop, outbox, renumber, wait_for, wait_report, zip_of
from tests.web_harness import RECIPIENT, SUPPLIER, client, token, web_config, web_gateway

GOOD = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
OTHER, OTHER_SIRET, OPERATOR = "globex", "73000000700015", "ops"
PASSWORDS = {SUPPLIER: "acme-console-1", RECIPIENT: "mairie-console-1", OTHER: "globex-console-1",
             OPERATOR: "ops-console-1"}
MAIRIE_SIRET, MAIRIE_NAME = "21370999100011", "COMMUNE D'EXEMPLE-SUR-LOIRE"
SCRIPT, IMAGE = "<script>window.pwned=1</script>", '"><img src=x onerror="window.pwned=2">'


class Back:
    """The processes' other roles (ingest, worker, deliver) beside the web process: stopped to hold flows
    unprocessed, started again to process them."""

    def __init__(self, config: Path) -> None:
        self.config, self.process = config, None

    def start(self) -> None:
        self.process = GatewayProcess(self.config, "--role", "ingest,worker,deliver",
                                      log=self.config.parent / "back.log")
        self.process.start()
        wait_for(self.process.started, 60, "the back process's start")

    def stop(self) -> None:
        if self.process is not None and self.process.proc.poll() is None:
            assert self.process.stop() == 0
        self.process = None


@dataclass
class Site:
    config: Path
    url: str
    token: str
    back: Back

    @property
    def root(self) -> Path:
        return self.config.parent


@contextmanager
def console_site(root: Path, overrides: dict) -> Iterator[Site]:
    """A web process and a back process sharing one SQLite database, with passwords for acme, the mairie,
    another supplier and an operator."""
    config = web_config(root, overrides=overrides)
    cli(config, "accounts", "add", SUPPLIER, "--update", "--role", "supplier", "--password", PASSWORDS[SUPPLIER])
    cli(config, "accounts", "add", RECIPIENT, "--update", "--role", "recipient", "--password", PASSWORDS[RECIPIENT])
    cli(config, "accounts", "add", OTHER, "--role", "supplier", "--siret", OTHER_SIRET, "--password", PASSWORDS[OTHER])
    cli(config, "operators", "add", OPERATOR, "--password", PASSWORDS[OPERATOR])
    back = Back(config)
    with web_gateway(config, "--role", "web") as (_web, url):
        back.start()
        try:
            yield Site(config, url, token(config, SUPPLIER), back)
        finally:
            back.stop()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with console_site(tmp_path_factory.mktemp("console"), {"sftp": {"enabled": False}}) as made:
        yield made


def log_in(page, user: str) -> None:
    page.goto("/console/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


def deposit(site: Site, name: str, content: bytes) -> dict:
    """A flow deposited over the API, once processed."""
    with client(site.url, site.token) as api:
        answer = api.post("/api/v1/flows", params={"name": name}, content=content)
        assert answer.status_code == 202, answer.text
        flow_id = answer.json()["flow_id"]
        return wait_for(lambda: (f := api.get(f"/api/v1/flows/{flow_id}").json())["finished_at"] and f,
                        60, f"flow {name} processed", 0.05)


def session_client(site: Site, page) -> httpx.Client:
    """Plain HTTP with the browser's session cookie."""
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == "gw_session")
    return httpx.Client(base_url=site.url, cookies={"gw_session": cookie}, timeout=30)


def _main(html: str) -> str:
    return html[html.index("<main"):html.index("</main>")]


def csrf_of(page) -> str:
    return page.locator("header form input[name=csrf]").get_attribute("value")


def test_a_supplier_deposits_a_flow_and_sees_its_report_appear(site, new_page):
    content = renumber(GOOD, "CONSOLE-DEP-1")
    page, plain = new_page(site.url), new_page(site.url, java_script_enabled=False)
    for each in (page, plain):
        log_in(each, SUPPLIER)
    site.back.stop()  # nothing processes the flow until the back process is started again
    try:
        page.get_by_role("link", name="Deposit").click()
        page.get_by_label("Flow file").set_input_files(
            files=[{"name": "console-deposit.xml", "mimeType": "application/xml", "buffer": content}])
        page.get_by_role("button", name="Send").click()
        expect(page).to_have_url(re.compile(r"/console/flows/[0-9]+-[0-9a-f]+$"))
        flow_id = page.url.rsplit("/", 1)[1]
        expect(page.locator(".waiting")).to_contain_text("Being processed")
        expect(page.get_by_role("link", name="Acknowledgement (XML)")).to_be_visible()
        expect(page.get_by_role("link", name="Integration report (XML)")).to_have_count(0)
        page.evaluate("window.stayed = true")
        plain.goto(f"/console/flows/{flow_id}")  # without JavaScript: the meta refresh
        expect(plain.locator(".waiting")).to_contain_text("Being processed")
    finally:
        site.back.start()
    for each in (page, plain):
        expect(each.get_by_role("link", name="Integration report (XML)")).to_be_visible(timeout=60_000)
        expect(each.locator("p.current")).to_contain_text("Integrated")
        expect(each.locator(".waiting")).to_have_count(0)
    assert page.evaluate("window.stayed") is True  # updated in place by the script, not reloaded
    expect(page.get_by_role("link", name="CONSOLE-DEP-1")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Integration report (XML)").click()
    report = outbox(site.root, SUPPLIER) / f"{flow_id}.report.xml"
    assert Path(download.value.path()).read_bytes() == report.read_bytes()
    assert page.errors == []


def test_search_by_number_and_status_sort_and_export(site, new_page):
    numbers = ["SRCH-B", "SRCH-A"]
    for number in numbers:
        deposit(site, f"{number}.xml", renumber(GOOD, number))
    rejected = deposit(site, "srch-x.xml", renumber((SAMPLES / "flows" / "reject-xsd.xml").read_bytes(), "SRCH-X"))
    assert rejected["invoices"][0]["verdict"] == "rejected"
    page = new_page(site.url)
    log_in(page, SUPPLIER)
    page.get_by_role("link", name="Invoices").click()
    page.get_by_label("Invoice number").fill("SRCH-A")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.invoices tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("SRCH-A")
    expect(rows.first).to_contain_text("Made available")

    page.get_by_label("Invoice number").fill("")
    page.get_by_label("Status").select_option(label="213 Rejetée · Rejected at integration")
    page.get_by_role("button", name="Search").click()
    expect(rows.filter(has_text="SRCH-X")).to_have_count(1)
    expect(rows.filter(has_text="SRCH-A")).to_have_count(0)

    page.get_by_label("Status").select_option("03")
    page.get_by_role("button", name="Search").click()
    expect(rows.filter(has_text="SRCH-A")).to_have_count(1)
    expect(rows.filter(has_text="SRCH-X")).to_have_count(0)
    page.get_by_role("link", name="Number").click()  # sorted by number, ascending
    expect(page.get_by_role("link", name="Number ▲")).to_be_visible()
    shown = [text.strip() for text in page.locator("table.invoices tbody tr td:first-child").all_inner_texts()]
    assert shown == sorted(shown) and shown.index("SRCH-A") < shown.index("SRCH-B")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export as CSV").click()
    exported = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8-sig"))))
    assert [row["number"] for row in exported] == shown
    assert {row["status_name"] for row in exported} == {"MISE_A_DISPOSITION"}

    page.goto("/console/invoices?number=SRCH-A&amount_min=600&amount_max=700")
    expect(rows).to_have_count(1)
    page.goto("/console/invoices?number=SRCH-A&amount_max=100,5")
    expect(page.get_by_text("No invoice matches.")).to_be_visible()


def test_an_invoice_page_gives_its_data_history_and_files(site, new_page):
    content = renumber(GOOD, "CONSOLE-INV-1")
    flow = deposit(site, "console-inv.xml", content)
    invoice_id = flow["invoices"][0]["id"]
    page = new_page(site.url)
    log_in(page, SUPPLIER)
    page.goto("/console/invoices?number=CONSOLE-INV-1")
    page.get_by_role("link", name="CONSOLE-INV-1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoice CONSOLE-INV-1")
    data = page.locator("dl.data")
    for text in ("645.48 EUR", MAIRIE_SIRET, "SERV-TECH", "mairie-exemple", invoice_id):
        expect(data).to_contain_text(text)
    history = page.locator("ol.timeline li")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("01 DEPOSEE")
    expect(history.nth(1)).to_contain_text("03 MISE_A_DISPOSITION · 203 Mise à disposition")
    expect(page.get_by_role("heading", name="Answer this invoice")).to_have_count(0)  # the supplier's

    def downloaded(link: str) -> bytes:
        with page.expect_download() as download:
            page.get_by_role("link", name=link).click()
        return Path(download.value.path()).read_bytes()

    assert downloaded("The invoice as delivered") == content
    ack = outbox(site.root, SUPPLIER) / f"{flow['id']}.ack.xml"
    assert downloaded("The flow's acknowledgement") == ack.read_bytes()
    returns = page.get_by_role("link", name=re.compile(r"^Status return "))
    expect(returns).to_have_count(2)  # DEPOSEE and MISE_A_DISPOSITION told to the supplier
    name = returns.first.inner_text().removeprefix("Status return ")
    zone_copy = outbox(site.root, SUPPLIER) / name
    wait_for(zone_copy.exists, 30, f"the status return {name} delivered")
    assert downloaded(f"Status return {name}") == zone_copy.read_bytes()


def test_the_recipient_suspends_an_invoice_and_the_supplier_sees_why(site, new_page, tmp_path):
    invoice_id = deposit(site, "console-susp.xml", renumber(GOOD, "CONSOLE-SUSP-1"))["invoices"][0]["id"]
    deposit(site, "console-susp-x.xml", renumber((SAMPLES / "flows" / "reject-xsd.xml").read_bytes(), "CONSOLE-SUSP-X"))
    mairie = new_page(site.url)
    log_in(mairie, RECIPIENT)
    mairie.goto("/console/invoices?number=CONSOLE-SUSP-1")
    mairie.get_by_role("link", name="CONSOLE-SUSP-1").click()
    offered = [o.split(" ")[1] for o in mairie.get_by_label("New status").locator("option").all_inner_texts()]
    assert offered == ["REJETEE", "SUSPENDUE", "SERVICE_FAIT", "MANDATEE", "MISE_A_DISPOSITION_COMPTABLE",
                       "COMPTABILISEE", "MISE_EN_PAIEMENT"]
    mairie.get_by_label("New status").select_option("SUSPENDUE")
    mairie.get_by_role("button", name="Set the status").click()  # no reason: refused, said on the page
    expect(mairie.get_by_role("alert")).to_contain_text("needs a reason")
    mairie.get_by_label("New status").select_option("SUSPENDUE")
    mairie.get_by_label("Reason").select_option("JUSTIF_ABS")
    mairie.get_by_label("Comment for the supplier").fill("bon de commande manquant")
    mairie.get_by_role("button", name="Set the status").click()
    expect(mairie.locator("p.current")).to_contain_text("06 SUSPENDUE · 208 Suspendue")
    expect(mairie.locator("ol.timeline li").last).to_contain_text("JUSTIF_ABS")
    assert [o.split(" ")[1] for o in mairie.get_by_label("New status").locator("option").all_inner_texts()] == [
        "REJETEE"]

    supplier = new_page(site.url)
    log_in(supplier, SUPPLIER)
    alert = supplier.locator("table.alerts tbody tr", has_text="CONSOLE-SUSP-1")
    expect(alert).to_contain_text("Suspended")
    expect(alert).to_contain_text("JUSTIF_ABS Supporting document missing")
    expect(alert).to_contain_text("bon de commande manquant")
    expect(alert).to_contain_text(RECIPIENT)
    screenshot(supplier, tmp_path, "dashboard.png")
    rejected = supplier.locator("table.alerts tbody tr", has_text="CONSOLE-SUSP-X")
    expect(rejected).to_contain_text("Rejected at integration")
    counts = supplier.locator("table.counts tbody tr")
    labels = counts.locator("span.status").all_inner_texts()  # what asks for action first
    urgent = {"Rejected at integration", "Rejected", "Suspended", "To be recycled"}
    assert labels[0] == "Rejected at integration" and "Suspended" in labels
    assert labels == sorted(labels, key=lambda label: label not in urgent)
    counts.filter(has_text="06 SUSPENDUE").get_by_role("link").click()
    expect(supplier).to_have_url(re.compile(r"/console/invoices\?status=06$"))
    expect(supplier.get_by_role("link", name="CONSOLE-SUSP-1")).to_be_visible()
    supplier.get_by_role("link", name="CONSOLE-SUSP-1").click()
    expect(supplier).to_have_url(re.compile(f"/console/invoices/{invoice_id}$"))
    expect(supplier.get_by_role("heading", name="Answer this invoice")).to_have_count(0)


def test_another_accounts_invoice_and_flow_are_not_found(site, new_page):
    flow = deposit(site, "console-mine.xml", renumber(GOOD, "CONSOLE-MINE-1"))
    invoice_id = flow["invoices"][0]["id"]
    urls = [f"/console/invoices/{invoice_id}", f"/console/invoices/{invoice_id}/document",
            f"/console/invoices/{invoice_id}/files/1", f"/console/flows/{flow['id']}",
            f"/console/flows/{flow['id']}/ack", f"/console/flows/{flow['id']}/report"]
    intruder = new_page(site.url)
    log_in(intruder, OTHER)
    nothing = intruder.request.get("/console/invoices/20200101000000000000-000000-001")
    assert nothing.status == 404
    for url in urls:  # exactly what does not exist gets
        answer = intruder.request.get(url)
        assert (answer.status, _main(answer.text())) == (404, _main(nothing.text())), url
    shown = intruder.goto(urls[0])
    assert shown.status == 404
    expect(intruder.get_by_role("heading", level=1)).to_have_text("Not found")
    intruder.goto("/console/")
    with session_client(site, intruder) as http:  # nor may it act on them, with its own valid token
        acted = http.post(f"/console/invoices/{invoice_id}/status",
                          data={"status": "SERVICE_FAIT", "csrf": csrf_of(intruder)})
        assert (acted.status_code, _main(acted.text)) == (404, _main(nothing.text()))
    # the recipient sees the invoice, not its supplier's flow
    mairie = new_page(site.url)
    log_in(mairie, RECIPIENT)
    assert mairie.goto(urls[0]).status == 200
    assert [mairie.request.get(url).status for url in urls[3:]] == [404, 404, 404]


def test_markup_in_numbers_names_and_file_names_is_shown_as_text(site, new_page, tmp_path):
    directory = (SAMPLES / "directory.csv").read_text(encoding="utf-8").replace(MAIRIE_NAME, SCRIPT + IMAGE)
    (tmp_path / "directory.csv").write_text(directory, encoding="utf-8")
    cli(site.config, "directory", "import", str(tmp_path / "directory.csv"))  # the buyer's name, as pages show it
    try:
        named = deposit(site, "console-named.xml", renumber(GOOD, "CONSOLE-XSS-1"))
        numbered = deposit(site, "console-numbered.zip", zip_of({"a.xml": renumber(GOOD, SCRIPT),
                                                                 "b.xml": renumber(GOOD, IMAGE)}))
        files = deposit(site, "console-files.zip", zip_of({f"{SCRIPT}.xml": renumber(GOOD, "CONSOLE-XSS-2"),
                                                           f"{IMAGE}.xml": renumber(GOOD, "CONSOLE-XSS-3")}))
        page = new_page(site.url)
        log_in(page, SUPPLIER)
        for url, texts in ((f"/console/invoices/{named['invoices'][0]['id']}", [SCRIPT + IMAGE]),
                           (f"/console/invoices/{numbered['invoices'][0]['id']}", [SCRIPT]),
                           (f"/console/invoices/{numbered['invoices'][1]['id']}", [IMAGE]),
                           (f"/console/flows/{numbered['id']}", [SCRIPT, IMAGE]),
                           (f"/console/flows/{files['id']}", [f"{SCRIPT}.xml", f"{IMAGE}.xml"]),
                           ("/console/invoices?counterparty=exemple", [SCRIPT, IMAGE, SCRIPT + IMAGE]),
                           ("/console/", [SCRIPT])):
            page.goto(url)
            for text in texts:
                expect(page.get_by_text(text).first).to_be_visible()
            assert page.evaluate("typeof window.pwned") == "undefined", url
        assert page.errors == []  # nothing even tried to run (the CSP would have said so)
    finally:
        cli(site.config, "directory", "import", str(SAMPLES / "directory.csv"))
    # a file name refused at deposit is quoted in the refusal, with its rule, as text (a browser sends '"' as %22)
    refused = "<img src=x onerror=window.pwned=3>#.xml"
    page.goto("/console/deposit")
    page.get_by_label("Flow file").set_input_files(
        files=[{"name": refused, "mimeType": "application/xml", "buffer": b"<x/>"}])
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_contain_text(f"IRR_NOM_F: The file name '{refused}' has #")
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]


def test_a_form_without_its_csrf_token_is_refused(site, new_page):
    invoice_id = deposit(site, "console-csrf.xml", renumber(GOOD, "CONSOLE-CSRF-1"))["invoices"][0]["id"]
    mairie = new_page(site.url)
    log_in(mairie, RECIPIENT)
    mairie.goto(f"/console/invoices/{invoice_id}")
    mairie.locator("form.answer input[name=csrf]").evaluate("field => field.remove()")
    mairie.get_by_label("New status").select_option("SERVICE_FAIT")
    with mairie.expect_response(f"**/console/invoices/{invoice_id}/status") as answer:
        mairie.get_by_role("button", name="Set the status").click()
    assert answer.value.status == 403
    expect(mairie.get_by_role("heading", level=1)).to_have_text("Form refused")
    with session_client(site, mairie) as http:
        forged = http.post(f"/console/invoices/{invoice_id}/status", data={"status": "SERVICE_FAIT", "csrf": "x" * 43})
        assert forged.status_code == 403
        # the login form too: its token is the one set in its own cookie
        assert http.post("/console/login", data={"name": SUPPLIER, "password": PASSWORDS[SUPPLIER]}).status_code == 403
    supplier = new_page(site.url)
    log_in(supplier, SUPPLIER)
    upload = {"file": ("console-csrf-2.xml", renumber(GOOD, "CONSOLE-CSRF-2"), "application/xml")}
    with session_client(site, supplier) as acme:
        assert acme.post("/console/deposit", files=upload).status_code == 403
        assert acme.post("/console/deposit", files=upload, data={"csrf": "x" * 43}).status_code == 403
        assert acme.post("/console/logout").status_code == 403
        notification = {"kind": "email", "target": "x@acme.example"}
        assert acme.post("/console/notifications", data=notification).status_code == 403
        assert acme.post("/console/notifications/1/remove").status_code == 403
        assert acme.get("/console/").status_code == 200  # still logged in
        taken = acme.post("/console/deposit", files=upload, data={"csrf": csrf_of(supplier)})
        assert taken.status_code == 303  # the same form with its token
    with client(site.url, site.token) as api:
        names = [f["original_name"] for f in api.get("/api/v1/flows", params={"limit": 1000}).json()["items"]]
    assert names.count("console-csrf-2.xml") == 1
    mairie.goto(f"/console/invoices/{invoice_id}")
    expect(mairie.locator("p.current")).to_contain_text("03 MISE_A_DISPOSITION")


def test_a_session_cookie_is_refused_after_logout_and_when_idle(site, new_page):
    page = new_page(site.url)
    log_in(page, SUPPLIER)
    cookie = next(c for c in page.context.cookies() if c["name"] == "gw_session")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"], cookie["path"]) == (True, "Lax", False, "/")
    with session_client(site, page) as http:
        assert http.get("/console/").status_code == 200
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
        refused = http.get("/console/")
        assert refused.status_code == 303 and refused.headers["location"].startswith("/console/login")
    page.context.add_cookies([{"name": cookie["name"], "value": cookie["value"], "url": site.url}])
    page.goto("/console/invoices")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")

    idle = new_page(site.url)
    log_in(idle, RECIPIENT)
    value = next(c["value"] for c in idle.context.cookies() if c["name"] == "gw_session")
    stored = hashlib.sha256(value.encode()).hexdigest()  # the database keeps the cookie's digest, never it
    engine = make_engine(config_module.load(site.config).gateway.database_url)
    try:
        with Session(engine) as session:  # unused for an hour, past [web] session_idle
            session.execute(update(WebSession).where(WebSession.id == stored)
                            .values(last_seen_at=utcnow() - timedelta(hours=1)))
            session.commit()
        idle.goto("/console/invoices")
        expect(idle.get_by_role("heading", level=1)).to_have_text("Log in")
        assert idle.url.endswith("/console/login?next=%2Fconsole%2Finvoices")
        with Session(engine) as session:  # the expired session is gone, not merely refused
            assert session.get(WebSession, stored) is None
            assert session.exec(select(WebSession).where(WebSession.id == value)).all() == []
    finally:
        engine.dispose()
    idle.get_by_label("User name").fill(RECIPIENT)  # logging in again leads where the visitor was going
    idle.get_by_label("Password").fill(PASSWORDS[RECIPIENT])
    idle.get_by_role("button", name="Log in").click()
    expect(idle.get_by_role("heading", level=1)).to_have_text("Invoices")


def test_an_operator_sees_every_account_and_deposits_nothing(site, new_page):
    deposit(site, "console-ops.xml", renumber(GOOD, "CONSOLE-OPS-1"))
    page = new_page(site.url)
    log_in(page, OPERATOR)
    expect(page.locator("header .user")).to_have_text("operator ops")
    expect(page.get_by_role("link", name="Deposit")).to_have_count(0)
    page.goto("/console/invoices?number=CONSOLE-OPS-1")
    expect(page.locator("table.invoices tbody tr")).to_contain_text("acme")
    assert page.goto("/console/deposit").status == 403
    expect(page.get_by_role("alert")).to_contain_text("Operators have no flows to deposit")


def test_notifications_are_added_and_removed(site, new_page):
    page = new_page(site.url)
    log_in(page, SUPPLIER)
    page.get_by_role("link", name="Notifications").click()
    page.get_by_label("Webhook (URL)").check()
    page.get_by_label("URL or address").fill("http://127.0.0.1:9/hook")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("alert")).to_contain_text("refused")
    page.get_by_label("E-mail address").check()
    page.get_by_label("URL or address").fill("compta@acme.example")
    page.get_by_label("a flow of mine is processed").uncheck()
    page.get_by_role("button", name="Add").click()
    row = page.locator("table.subscriptions tbody tr", has_text="compta@acme.example")
    expect(row).to_contain_text("an invoice's status changes")
    expect(row).not_to_contain_text("a flow of mine")
    listed = cli(site.config, "accounts", "notify", SUPPLIER, "--list")
    assert "compta@acme.example" in listed and "invoice.status" in listed
    row.get_by_role("button", name="Remove").click()
    expect(page.locator("table.subscriptions tbody tr", has_text="compta@acme.example")).to_have_count(0)
    assert "compta@acme.example" not in cli(site.config, "accounts", "notify", SUPPLIER, "--list")


def test_pages_speak_the_browsers_language_or_the_one_chosen(site, new_page):
    page = new_page(site.url, locale="fr-FR")
    page.goto("/console/login")
    expect(page.get_by_role("heading", level=1)).to_have_text("Connexion")
    page.get_by_label("Identifiant").fill(SUPPLIER)
    page.get_by_label("Mot de passe").fill(PASSWORDS[SUPPLIER])
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tableau de bord")
    expect(page.locator("table.counts")).to_contain_text("Mise à disposition")
    page.get_by_role("link", name="EN", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    page.get_by_role("link", name="Invoices").click()  # the choice is kept
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoices")


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """A web process whose failed logins are soon banned."""
    config = web_config(tmp_path_factory.mktemp("throttle"), overrides={
        "sftp": {"enabled": False}, "web": {"auth_delay": 0.2, "auth_delay_max": 5.0, "ban_after": 3,
                                            "ban_accounts": 3}})
    cli(config, "accounts", "add", SUPPLIER, "--update", "--role", "supplier", "--password", PASSWORDS[SUPPLIER])
    cli(config, "accounts", "add", RECIPIENT, "--update", "--role", "recipient", "--password", PASSWORDS[RECIPIENT])
    supplier_token = token(config, SUPPLIER)
    with web_gateway(config, "--role", "web") as (_web, url):
        yield url, supplier_token


def test_failed_logins_are_throttled_and_unknown_names_answered_alike(strict):
    url, supplier_token = strict

    def attempt(name: str, password: str) -> tuple[httpx.Response, float]:
        with httpx.Client(base_url=url, timeout=30) as browser_like:
            form = browser_like.get("/console/login")
            login_token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
            started = time.monotonic()
            answer = browser_like.post("/console/login", data={"name": name, "password": password,
                                                               "csrf": login_token, "next": "/console/"})
            return answer, time.monotonic() - started

    good, _ = attempt(SUPPLIER, PASSWORDS[SUPPLIER])
    assert good.status_code == 303 and "gw_session" in good.cookies
    refusals = [attempt(name, "wrong") for name in ("nobody", SUPPLIER, SUPPLIER)]
    messages = {re.search(r'class="error" role="alert">([^<]*)<', r.text).group(1) for r, _ in refusals}
    assert messages == {"Unknown user name or wrong password."}
    assert [r.status_code for r, _ in refusals] == [401, 401, 401]
    for (_answer, seconds), delay in zip(refusals, (0.2, 0.2, 0.4), strict=True):  # doubling for each name
        assert seconds >= delay
    attempt(SUPPLIER, "wrong")  # the third failure of that name locks it from this address
    locked, _ = attempt(SUPPLIER, PASSWORDS[SUPPLIER])
    assert locked.status_code == 429 and "Too many failed logins" in locked.text
    assert "gw_session" not in locked.cookies
    other, _ = attempt(RECIPIENT, PASSWORDS[RECIPIENT])  # another account behind the same address
    assert other.status_code == 303 and "gw_session" in other.cookies
    attempt("root", "wrong")  # a third name failing from the address bans it
    banned, _ = attempt(RECIPIENT, PASSWORDS[RECIPIENT])
    assert banned.status_code == 429 and "gw_session" not in banned.cookies
    with client(url, supplier_token) as api:  # the API's throttle is the same
        assert api.get("/api/v1/flows").status_code == 429


def _payable(content: bytes, amount: str) -> bytes:
    """The UBL sample with another payable amount (its totals no longer add up: the rules reject it)."""
    return content.replace(b'currencyID="EUR">645.48</cbc:PayableAmount>',
                           f'currencyID="EUR">{amount}</cbc:PayableAmount>'.encode())


def test_the_console_searches_on_each_database(config_file, app, running):
    """What the dashboard and the search ask gateway.data.views, on SQLite and PostgreSQL: amount ranges and sorts
    (a total that is not a number is never one), a counterparty by part of its directory name, counts by
    status, and the invoices that ask for action with their reasons."""
    root = config_file.parent
    for number, amount in (("AMT-1", "645.48"), ("AMT-2", "12.50"), ("AMT-3", "n/a")):
        drop(root, SUPPLIER, f"{number}.xml", _payable(renumber(GOOD, number), amount))
        wait_report(root, SUPPLIER, f"{number}.xml")
    accepted = views.invoices(app, Viewer(SUPPLIER), number="AMT-1").items[0]
    wait_for(lambda: views.invoice(app, OPERATOR_VIEW, accepted["id"])["status"] == "03", 20, "AMT-1 made available")
    change_status(app, accepted["id"], Status.SUSPENDUE, RECIPIENT, recipient=RECIPIENT, reason_code="JUSTIF_ABS",
                  reason="bon de commande manquant")

    def numbers(who: str = SUPPLIER, **search) -> list[str]:
        return [i["number"] for i in views.invoices(app, Viewer(who, receives=who == RECIPIENT), **search).items]

    assert numbers(amount_min=Decimal("600")) == ["AMT-1"]
    assert numbers(amount_min=Decimal("12.5"), amount_max=Decimal("12.50")) == ["AMT-2"]
    assert numbers(sort="amount", descending=False) == ["AMT-2", "AMT-1", "AMT-3"]  # no amount: last
    assert numbers(sort="amount") == ["AMT-1", "AMT-2", "AMT-3"]
    assert numbers(sort="number", descending=False, offset=1, limit=1) == ["AMT-2"]
    assert numbers(counterparty="exemple-SUR") == ["AMT-3", "AMT-2", "AMT-1"]  # COMMUNE D'EXEMPLE-SUR-LOIRE
    assert numbers(counterparty="%") == []  # a LIKE wildcard is a character like another
    assert numbers(RECIPIENT, counterparty="acm") == ["AMT-1"]  # the mairie received only AMT-1
    assert numbers(verdict=Verdict.REJECTED, sort="number", descending=False) == ["AMT-2", "AMT-3"]
    counts = {c["name"]: c["count"] for c in views.status_counts(app, Viewer(SUPPLIER))}
    assert counts == {None: 2, "SUSPENDUE": 1}
    assert views.status_counts(app, Viewer(SUPPLIER), issued_to="2026-01-01") == []
    alerts = views.alerts(app, Viewer(SUPPLIER))
    assert [a["number"] for a in alerts] == ["AMT-3", "AMT-2", "AMT-1"]
    assert alerts[2]["reason"]["reason_code"] == "JUSTIF_ABS" and alerts[2]["reason"]["actor"] == RECIPIENT
    assert alerts[0]["reason"] is None and alerts[0]["errors"]
