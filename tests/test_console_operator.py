"""The console's operator pages against a real `gateway run`, in a real headless Chromium: the queue as `gateway
queue` shows it, refreshing itself; dead deliveries and notifications retried once their targets are back; the
throughput charts; flows filtered and one flow's whole timeline; a directory export imported by upload, its
errors line by line; accounts added, given tokens, disabled and enabled again. Security: every operator URL is
not found for a supplier, every form needs its CSRF token, markup in names stays text."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import paramiko
import pytest
from click.testing import CliRunner
from playwright.sync_api import expect
from stdnum import luhn

from gateway import config as config_module
from gateway.cli import main
from gateway.data import views
from gateway.data.db import session_scope
from gateway.data.models import Flow, FlowState, Invoice, Verdict
from gateway.ops.throughput import HOURS, MINUTES, throughput
from tests.browser_harness import screenshot
from tests.harness import SAMPLES, GatewayProcess, cli, drop, renumber, rows, wait_for, wait_report, write_config
from tests.remote_harness import RemoteSshd, needs_sshd, set_remote
from tests.test_console import (
    GOOD,
    IMAGE,
    OPERATOR,
    OTHER,
    PASSWORDS,
    SCRIPT,
    Site,
    _main,
    console_site,
    csrf_of,
    deposit,
    log_in,
    session_client,
)
from tests.test_notifications import Receiver, free_port
from tests.web_harness import RECIPIENT, SUPPLIER, client, log_lines, token

REJECTED = (SAMPLES / "flows" / "reject-xsd.xml").read_bytes()
OPERATOR_PAGES = ["/console/queue", "/console/throughput", "/console/deliveries",
                  "/console/deliveries?state=delivered", "/console/directory", "/console/directory?q=exemple",
                  "/console/directory/21370999100011", "/console/accounts", f"/console/accounts/{SUPPLIER}"]
OPERATOR_FORMS = ["/console/deliveries/retry", "/console/directory/import", "/console/accounts",
                  f"/console/accounts/{SUPPLIER}/password", f"/console/accounts/{SUPPLIER}/disable",
                  f"/console/accounts/{SUPPLIER}/tokens", f"/console/accounts/{SUPPLIER}/tokens/0123456789ab/revoke"]


def operator_site(tmp_path_factory):
    """A web process and a back process sharing one SQLite database, as in test_console; quick retries (two
    attempts), webhooks allowed to 127.0.0.1, the SFTP server configured on a free port (run by a process of
    its own where a test needs it), failed logins hardly slowed down. A context manager, for the modules whose
    `site` it is."""
    return console_site(tmp_path_factory.mktemp("operator"), {
        "sftp": {"enabled": True, "port": 0, "auth_delay": 0.05, "auth_delay_max": 0.1},
        "web": {"auth_delay": 0.05, "auth_delay_max": 0.2, "ban_after": 1000},
        "delivery": {"max_attempts": 2, "retry_base": 0.05, "retry_max": 0.1},
        "remote": {"timeout": 5.0},
        "notify": {"allow_private": True}})


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with operator_site(tmp_path_factory) as made:
        yield made


def _sent(site: Site, name: str, content: bytes) -> str:
    """A flow deposited over the API, not waited for: its id."""
    with client(site.url, site.token) as api:
        answer = api.post("/api/v1/flows", params={"name": name}, content=content)
        assert answer.status_code == 202, answer.text
        return answer.json()["flow_id"]


def _operator(new_page, site: Site, **options):
    page = new_page(site.url, **options)
    log_in(page, OPERATOR)
    return page


def test_the_queue_page_shows_what_gateway_queue_shows_and_refreshes_itself(site, new_page, tmp_path):
    page = _operator(new_page, site)
    plain = _operator(new_page, site, java_script_enabled=False)
    site.back.stop()  # nothing takes the flows until the back process is started again
    try:
        for n in range(2):
            _sent(site, f"queue-{n}.xml", renumber(GOOD, f"QUEUE-{n}"))
        page.get_by_role("link", name="Queue").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Queue")
        shown = json.loads(cli(site.config, "queue", "--json"))
        assert shown["flows"]["ready"] >= 2
        for name, row in (("flows", page.locator("table.queue tr.flows")),
                          ("deliveries", page.locator("table.queue tr.deliveries"))):
            for column in ("ready", "leased", "later", "dead"):
                expect(row.locator(f"td.{column}")).to_have_text(str(shown[name][column]))
        expect(page.locator("table.queue tr.flows td.oldest")).to_have_text(re.compile(r"^\d+ s$"))
        [web] = shown["processes"]  # the web process alone, with its role
        assert web["roles"] == ["web"] and web["alive"]
        processes = page.locator("table.processes tbody tr")
        expect(processes).to_have_count(1)
        expect(processes.first).to_contain_text(web["id"])
        expect(processes.first).to_contain_text("web")
        expect(processes.first.locator(".process-state")).to_have_text("alive")
        plain.goto("/console/queue")  # without JavaScript, the same figures, and a meta refresh
        expect(plain.locator("table.queue tr.flows td.ready")).to_have_text(str(shown["flows"]["ready"]))
        assert 'http-equiv="refresh"' in plain.content()
        page.evaluate("window.stayed = true")
    finally:
        site.back.start()
    # the page updates itself: the back process appears with its roles, and takes the flows
    back_row = page.locator("table.processes tbody tr", has_text="deliver, ingest, worker")
    expect(back_row).to_have_count(1, timeout=30_000)
    expect(page.locator("table.queue tr.flows td.ready")).to_have_text("0", timeout=60_000)
    assert page.evaluate("window.stayed") is True  # updated in place, not reloaded
    roles = sorted(p["roles"] for p in json.loads(cli(site.config, "queue", "--json"))["processes"])
    assert roles == [["deliver", "ingest", "worker"], ["web"]]
    screenshot(page, tmp_path, "queue.png")
    assert (tmp_path / "queue.png").stat().st_size > 0
    assert page.errors == []


def _dead(site: Site, kinds: tuple[str, ...], flows: set[str]) -> list[dict]:
    dead = json.loads(cli(site.config, "deliveries", "list", "--state", "dead", "--json", "--limit", "1000"))
    return [d for d in dead if d["kind"] in kinds and d["flow_id"] in flows]


def _delivered(site: Site, delivery_id: int) -> bool:
    listed = json.loads(cli(site.config, "deliveries", "list", "--state", "delivered", "--json", "--limit", "1000"))
    return delivery_id in [d["id"] for d in listed]


@needs_sshd
def test_dead_deliveries_and_notifications_are_retried_once_their_targets_are_back(site, new_page, tmp_path):
    """The mairie's own SFTP server is down and acme's webhook does not answer: the invoices and the
    notifications die after their attempts; an operator presses Retry on one row, then on a selection, once
    the server and the receiver are back, and each is delivered once."""
    sshd = RemoteSshd(tmp_path / "sshd", tmp_path / "remote")
    folder = tmp_path / "remote" / "mairie"
    folder.mkdir()
    set_remote(site.config, RECIPIENT, "push", sshd.url(folder), sshd.key, sshd.host_public_key())
    port = free_port()
    cli(site.config, "accounts", "notify", SUPPLIER, "--webhook", f"http://127.0.0.1:{port}/hook",
        "--secret", "s" * 32, "--events", "flow.finished")
    contents = {n: renumber(GOOD, f"DEAD-{n}") for n in range(2)}
    try:
        flows = [deposit(site, f"dead-{n}.xml", content)["id"] for n, content in contents.items()]
        invoices = wait_for(lambda: len(found := _dead(site, ("invoice",), set(flows))) == 2 and found, 60,
                            "two dead invoice deliveries")
        hooks = wait_for(lambda: len(found := _dead(site, ("webhook",), set(flows))) == 2 and found, 60,
                         "two dead notifications")
        assert all("127.0.0.1" in d["last_error"] for d in invoices)
        first, second = sorted(invoices, key=lambda d: d["id"])

        page = _operator(new_page, site)
        page.get_by_role("link", name="Deliveries").click()
        table = page.locator("table.deliveries tbody")
        for dead in (first, second, *hooks):
            expect(table.locator(f"tr[data-id='{dead['id']}']")).to_contain_text(dead["destination"])
        expect(table.locator(f"tr[data-id='{hooks[0]['id']}']")).to_contain_text("webhook notification")

        sshd.start()
        with Receiver(port=port) as receiver:
            table.locator(f"tr[data-id='{first['id']}']").get_by_role("button", name="Retry").click()
            expect(page.get_by_role("status")).to_contain_text(f"Requeued for an attempt now: {first['id']}.")
            wait_for(lambda: _delivered(site, first["id"]), 30, "the first invoice delivered")
            expect(table.locator(f"tr[data-id='{first['id']}']")).to_have_count(0)  # no longer dead
            for chosen in (second, *hooks):
                page.get_by_label(f"Select delivery {chosen['id']}").check()
            page.get_by_role("button", name="Retry the selected ones").click()
            ids = ", ".join(str(n) for n in sorted((d["id"] for d in (second, *hooks)), reverse=True))  # as listed
            expect(page.get_by_role("status")).to_contain_text(f"Requeued for an attempt now: {ids}.")
            for chosen in (second, *hooks):
                wait_for(lambda: _delivered(site, chosen["id"]), 30, f"delivery {chosen['id']}")
            received = [json.loads(body) for _headers, body in receiver.requests]
        assert sorted(p.read_bytes() for p in folder.iterdir()) == sorted(contents.values())  # each once
        assert sorted(event["data"]["flow_id"] for event in received) == sorted(flows)
        page.goto("/console/deliveries?state=delivered")
        expect(page.locator(f"table.deliveries tr[data-id='{first['id']}']")).to_contain_text(RECIPIENT)
        with session_client(site, page) as http:  # a delivered one is not sent again
            again = http.post("/console/deliveries/retry", data={"one": str(first["id"]), "csrf": csrf_of(page)})
            assert again.status_code == 303 and f"refused={first['id']}" in again.headers["location"]
        page.goto(f"/console/flows/{first['flow_id']}")  # the flow's page: its deliveries and its timeline
        expect(page.locator("table.deliveries tr", has_text=RECIPIENT)).to_contain_text("Delivered")
        requeued = page.locator("ol.timeline li", has_text="delivery_requeued")
        expect(requeued.filter(has_text=f"recipient={RECIPIENT}")).to_have_count(1)  # the invoice, once
        expect(requeued.filter(has_text=f"recipient={SUPPLIER}")).to_have_count(1)  # and acme's notification
        expect(page.locator("ol.timeline li", has_text="delivery_dead").first).to_contain_text("127.0.0.1")
        assert page.errors == []
    finally:
        cli(site.config, "accounts", "remote", RECIPIENT, "--remove", "push")
        for line in cli(site.config, "accounts", "notify", SUPPLIER, "--list").splitlines()[2:]:
            cli(site.config, "accounts", "notify", SUPPLIER, "--remove", line.split()[0])
        sshd.stop()


def test_the_throughput_page_charts_the_flows_produced(site, new_page):
    good = deposit(site, "rate-ok.xml", renumber(GOOD, "RATE-1"))
    bad = deposit(site, "rate-bad.xml", renumber(REJECTED, "RATE-2"))
    rule = next(e["rule"] for e in bad["invoices"][0]["errors"] if e["severity"] == "fatal")
    assert good["state"] == "INTEGRE" and bad["state"] == "REJETE"
    page = _operator(new_page, site)
    page.get_by_role("link", name="Throughput").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Throughput")
    flows, invoices = rows(site.config, Flow), rows(site.config, Invoice)  # the database, counted apart
    statuses = {f.id for f in flows if f.kind == "statuses"}
    accepted = sum(i.verdict is Verdict.ACCEPTED and i.flow_id not in statuses for i in invoices)
    rejected = sum(i.verdict is Verdict.REJECTED and i.flow_id not in statuses for i in invoices)
    assert accepted >= 1 and rejected >= 1
    expect(page.locator("#per-minute-caption")).to_contain_text(f"flows: {len(flows)}")
    expect(page.locator("#per-hour-caption")).to_contain_text(f"flows: {len(flows)}")
    expect(page.locator("#invoices-caption")).to_contain_text(f"accepted: {accepted}")
    expect(page.locator("#invoices-caption")).to_contain_text(f"rejected: {rejected}")
    expect(page.locator("p.totals")).to_have_text(f"Last seven days: {accepted} accepted, {rejected} rejected.")
    for chart, title, buckets in (("per-minute", "Flows per minute, last hour", MINUTES),
                                  ("per-hour", "Flows per hour, last week", HOURS)):
        svg = page.locator(f"figure:has(#{chart}-caption) svg")
        expect(svg).to_have_attribute("role", "img")
        expect(svg.locator(f"#{chart}-title")).to_have_text(title)
        table = page.locator(f"figure:has(#{chart}-caption) table.chart-data tbody tr")
        expect(table).to_have_count(buckets)
        counts = [int(n) for n in table.locator("td").all_text_contents()]  # in a closed <details>
        assert sum(counts) == len(flows)
        assert svg.locator("rect.bar").count() == sum(1 for n in counts if n)  # a column per busy minute or hour
    ranking = page.locator("figure:has(#rules-caption)")
    expect(ranking.locator("svg text.label", has_text=rule)).to_have_count(1)
    assert page.errors == []


def test_operators_filter_flows_and_read_a_flows_whole_timeline(site, new_page):
    by_api = deposit(site, "filter-api.xml", renumber(GOOD, "FILTER-1"))
    drop(site.root, SUPPLIER, "filter-zone.xml", renumber(REJECTED, "FILTER-2"))
    wait_report(site.root, SUPPLIER, "filter-zone.xml", 60)
    deposit(replace(site, token=token(site.config, OTHER)), "filter-other.xml", renumber(GOOD, "FILTER-3"))
    page = _operator(new_page, site)
    page.get_by_role("link", name="Flows", exact=True).click()
    listed = page.locator("table.flows tbody tr")

    page.get_by_label("State").select_option("REJETE")
    page.get_by_role("button", name="Show").click()
    expect(listed.filter(has_text="filter-zone.xml")).to_have_count(1)
    assert set(listed.locator("small.code").all_inner_texts()) == {"REJETE"}

    page.get_by_label("State").select_option("")
    page.get_by_label("Account").fill(OTHER)
    page.get_by_role("button", name="Show").click()
    expect(listed.filter(has_text="filter-other.xml")).to_have_count(1)
    assert {t.split()[-1] for t in listed.locator("td:nth-child(2)").all_inner_texts()} == {OTHER}

    page.get_by_label("Account").fill(SUPPLIER)
    page.get_by_label("Channel").select_option("zone")
    page.get_by_role("button", name="Show").click()
    expect(listed.filter(has_text="filter-zone.xml")).to_have_count(1)
    expect(listed.filter(has_text="filter-api.xml")).to_have_count(0)
    assert set(listed.locator("td:nth-child(4)").all_inner_texts()) == {"zone"}

    today = datetime.now(UTC).date()
    page.goto(f"/console/flows?received_to={today - timedelta(days=2)}")
    expect(page.get_by_text("No flow matches.")).to_be_visible()
    page.goto(f"/console/flows?received_from={today - timedelta(days=1)}&channel=api&account={SUPPLIER}")
    expect(listed.filter(has_text="filter-api.xml")).to_have_count(1)
    expect(listed.filter(has_text="filter-zone.xml")).to_have_count(0)
    page.goto("/console/flows?received_from=2026-13-45")
    expect(page.get_by_role("status")).to_contain_text("Received from: 2026-13-45 ignored.")

    def delivered() -> dict | None:  # the flow as the CLI prints it, once its deliveries are made
        flow = json.loads(cli(site.config, "flows", "show", by_api["id"], "--json"))
        return flow if all(d["state"] == "delivered" for d in flow["deliveries"]) else None

    shown = wait_for(delivered, 30, "the flow's deliveries")
    listed.filter(has_text="filter-api.xml").get_by_role("link").click()
    timeline = page.locator("ol.timeline li")
    expect(timeline).to_have_count(len(shown["events"]))
    assert [t.split()[2] for t in timeline.all_inner_texts()] == [e["kind"] for e in shown["events"]]
    expect(timeline.first).to_contain_text("channel=api")
    packs = shown["invoices"][0]["packs"]
    assert packs
    for pack in packs:
        expect(page.locator("p.packs")).to_contain_text(f"{pack['name']} {pack['version']}")
    expect(page.locator("table.deliveries tr", has_text=RECIPIENT)).to_contain_text("Delivered")

    supplier = new_page(site.url)  # the supplier's own view of it: no timeline details, no deliveries, no account
    log_in(supplier, SUPPLIER)
    supplier.goto(f"/console/flows/{by_api['id']}")
    expect(supplier.locator("ol.timeline li")).to_have_count(len(shown["events"]))
    expect(supplier.locator("ol.timeline")).not_to_contain_text("channel=api")
    expect(supplier.locator("table.deliveries")).to_have_count(0)
    supplier.goto("/console/flows")
    expect(supplier.get_by_label("Account")).to_have_count(0)
    supplier.goto(f"/console/flows?account={OTHER}")  # ignored: an account sees its own flows
    expect(supplier.locator("table.flows tbody tr", has_text="filter-other.xml")).to_have_count(0)
    expect(supplier.locator("table.flows tbody tr", has_text="filter-api.xml")).to_have_count(1)


def _siret(base: str) -> str:
    """A SIRET that passes its checks: base (8 digits) and its SIREN's key, then NIC 0001 and its key."""
    siren = base + luhn.calc_check_digit(base)
    return siren + "0001" + luhn.calc_check_digit(siren + "0001")


def test_a_directory_export_is_imported_by_upload_with_its_errors_line_by_line(site, new_page, tmp_path):
    header, mairie = (SAMPLES / "directory.csv").read_text(encoding="utf-8").splitlines()[:2]
    marked = SCRIPT + IMAGE
    siret = _siret("21379998")
    fields = mairie.split(";")
    good = ";".join([fields[0], siret, marked, *fields[3:]])
    short = ";".join(fields[:19])
    unsure = ";".join([fields[0], _siret("21379997"), "MAIRIE", "peut-être", *fields[4:]])
    bad = tmp_path / "export-bad.csv"
    bad.write_text("\n".join([header, good, short, unsure]) + "\n", encoding="utf-8")
    refused = CliRunner().invoke(main, ["--config", str(site.config), "directory", "import", str(bad)])
    assert refused.exit_code == 1
    expected = [line.removeprefix("Error: ") for line in refused.stderr.splitlines()  # what the CLI says
                if line.removeprefix("Error: ").startswith(bad.name)]
    assert [line.split(":")[0] for line in expected] == ["export-bad.csv line 3",
                                                         "export-bad.csv line 4, column EmetteurEdi"]

    page = _operator(new_page, site)
    page.get_by_role("link", name="Directory").click()
    page.get_by_label("Structures").set_input_files(str(bad))
    with page.expect_response("**/console/directory/import") as answer:
        page.get_by_role("button", name="Import").click()
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text("Nothing was imported: 2 error(s), line by line:")
    assert page.locator("ol.import-errors li").all_inner_texts() == expected
    page.goto(f"/console/directory?q={siret}")
    expect(page.get_by_text(f"No structure matches {siret}.")).to_be_visible()  # none of the file was imported

    fine = tmp_path / "export.csv"
    fine.write_text("\n".join([header, good]) + "\n", encoding="utf-8")
    page.get_by_label("Structures").set_input_files(str(fine))
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("status")).to_have_text("Imported 1 structures and 0 services.")
    page.get_by_label("SIRET or name").fill("script>window")  # part of the name
    page.get_by_role("button", name="Search").click()
    row = page.locator("table.structures tbody tr")
    expect(row).to_have_count(1)
    expect(row.get_by_text(marked)).to_be_visible()
    row.get_by_role("link", name=siret).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(marked)
    assert page.evaluate("typeof window.pwned") == "undefined"

    page.get_by_role("link", name="Directory").click()
    page.get_by_label("SIRET or name").fill("21370999100011")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="21370999100011").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("COMMUNE D'EXEMPLE-SUR-LOIRE")
    expect(page.locator("table.flags tr", has_text="EDI receiver")).to_contain_text("yes")
    expect(page.locator("table.flags tr", has_text="EDI emitter")).to_contain_text("no")
    expect(page.locator("table.services tbody tr")).to_contain_text("SERV-TECH")
    expect(page.locator("dl.data")).to_contain_text(RECIPIENT)  # the account holding it
    assert json.loads(cli(site.config, "directory", "show", siret, "--json"))["name"] == marked
    assert len(page.errors) == 1 and "status of 422" in page.errors[0]  # the refused import, no script


def _api_status(site: Site, bearer: str) -> int:
    with client(site.url, bearer) as api:
        return api.get("/api/v1/flows").status_code


def _sftp_login(port: int, host_key: paramiko.PKey, name: str, password: str) -> bool:
    transport = paramiko.Transport(("127.0.0.1", port))
    try:
        transport.connect(hostkey=host_key, username=name, password=password)
        return transport.is_authenticated()
    except paramiko.AuthenticationException:
        return False
    finally:
        transport.close()


def _submit_login(page, name: str, password: str) -> int:
    page.goto("/console/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(password)
    with page.expect_response("**/console/login") as answer:
        page.get_by_role("button", name="Log in").click()
    return answer.value.status


def _log_in(page, name: str, password: str) -> None:
    assert _submit_login(page, name, password) == 303
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


def _login_refused(page, name: str, password: str) -> None:
    assert _submit_login(page, name, password) == 401
    expect(page.get_by_role("alert")).to_have_text("Unknown user name or wrong password.")


def test_accounts_are_added_given_tokens_disabled_and_enabled(site, new_page):
    name, password = "console-made", "made-password-1"
    sftp = GatewayProcess(site.config, "--role", "sftp", log=site.root / "sftp.log")
    sftp.start()
    try:
        port = wait_for(lambda: next((line["port"] for line in log_lines(sftp.log)
                                      if line["event"] == "sftp_started"), None), 60, "the SFTP server's start")
        host_key = paramiko.Ed25519Key.from_private_key_file(
            str(config_module.load(site.config).sftp_host_key))

        page = _operator(new_page, site)
        page.get_by_role("link", name="Accounts").click()
        page.get_by_label("Name").fill(name)
        page.get_by_label("Role").select_option("supplier")
        page.get_by_label("SIRETs").fill("35600000000048")  # held by no other account
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Add").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Account {name}")
        expect(page.get_by_role("status")).to_have_text("Account added.")
        assert name in cli(site.config, "accounts", "list")

        page.get_by_role("button", name="Issue a token").click()
        first = page.locator("code.token").inner_text()
        assert _api_status(site, first) == 200
        token_id = first.split("_")[1]
        page.goto(f"/console/accounts/{name}")  # shown once: not on the page any more
        expect(page.locator("code.token")).to_have_count(0)
        page.locator(f"table.tokens tr[data-id='{token_id}']").get_by_role("button", name="Revoke").click()
        expect(page.get_by_role("status")).to_have_text("Token revoked.")
        assert _api_status(site, first) == 401
        page.get_by_role("button", name="Issue a token").click()
        second = page.locator("code.token").inner_text()
        assert _api_status(site, second) == 200

        made = new_page(site.url)
        _log_in(made, name, password)
        assert _sftp_login(port, host_key, name, password)

        page.get_by_role("button", name="Disable logins").click()
        expect(page.get_by_role("status")).to_contain_text("Logins disabled")
        expect(page.locator("dd.logins")).to_have_text("disabled")
        made.goto("/console/invoices")  # its session has ended
        expect(made.get_by_role("heading", level=1)).to_have_text("Log in")
        _login_refused(made, name, password)
        assert _api_status(site, second) == 401
        assert not _sftp_login(port, host_key, name, password)
        assert "disabled" in next(line for line in cli(site.config, "accounts", "list").splitlines()
                                  if line.startswith(name))

        page.get_by_role("button", name="Allow logins again").click()
        expect(page.locator("dd.logins")).to_have_text("allowed")
        assert _api_status(site, second) == 200
        assert _sftp_login(port, host_key, name, password)
        _log_in(made, name, password)

        page.get_by_label("New password").fill("made-password-2")
        page.get_by_role("button", name="Set the password").click()
        expect(page.get_by_role("status")).to_have_text("Password changed.")
        _login_refused(new_page(site.url), name, password)
        assert _sftp_login(port, host_key, name, "made-password-2")
        assert not _sftp_login(port, host_key, name, password)
    finally:
        sftp.stop()

    page.get_by_role("link", name="Accounts").click()
    expect(page.locator("table.accounts tr", has_text=name)).to_contain_text("allowed")
    assert cli(site.config, "accounts", "disable", name) == f"account {name} disabled\n"  # the CLI does the same
    page.reload()
    expect(page.locator("table.accounts tr", has_text=name)).to_contain_text("disabled")
    assert _api_status(site, second) == 401
    assert cli(site.config, "accounts", "disable", name, "--enable") == f"account {name} enabled\n"
    assert _api_status(site, second) == 200
    for refused, detail in ((SCRIPT, "letters, digits, '-' and '_' only"), (SUPPLIER, f"account {SUPPLIER} exists")):
        page.get_by_label("Name").fill(refused)
        page.get_by_label("Role").select_option("recipient")
        page.get_by_role("button", name="Add").click()
        expect(page.get_by_role("alert")).to_contain_text(detail)
        expect(page.get_by_label("Name")).to_have_value(refused)  # given back as typed, as text
        assert page.evaluate("typeof window.pwned") == "undefined"
    acme = next(line for line in cli(site.config, "accounts", "list").splitlines() if line.startswith(f"{SUPPLIER} "))
    assert "supplier" in acme  # the existing account was not changed


def test_operator_pages_are_not_found_for_a_supplier(site, new_page):
    supplier = new_page(site.url)
    log_in(supplier, SUPPLIER)
    csrf = csrf_of(supplier)
    for label in ("Queue", "Throughput", "Deliveries", "Directory", "Accounts"):
        expect(supplier.get_by_role("link", name=label)).to_have_count(0)
    nothing = supplier.request.get("/console/nothing-here")
    assert nothing.status == 404
    for url in OPERATOR_PAGES:  # exactly what does not exist gets
        answer = supplier.request.get(url)
        assert (answer.status, _main(answer.text())) == (404, _main(nothing.text())), url
    assert supplier.goto("/console/queue").status == 404
    expect(supplier.get_by_role("heading", level=1)).to_have_text("Not found")
    before = cli(site.config, "accounts", "token", SUPPLIER, "--list")
    with session_client(site, supplier) as http:  # nor may it post their forms, with its own valid token
        for url in OPERATOR_FORMS:
            answer = http.post(url, data={"csrf": csrf, "name": "intruder", "role": "supplier",
                                          "password": "x", "disabled": "1", "id": "1", "one": "1"})
            assert (answer.status_code, _main(answer.text)) == (404, _main(nothing.text())), url
    assert cli(site.config, "accounts", "token", SUPPLIER, "--list") == before
    assert "intruder" not in cli(site.config, "accounts", "list")
    log_in(new_page(site.url), SUPPLIER)  # neither disabled nor given another password


def test_operator_forms_without_their_csrf_token_are_refused(site, new_page):
    page = _operator(new_page, site)
    before = cli(site.config, "accounts", "token", SUPPLIER, "--list")
    with session_client(site, page) as http:
        for url in OPERATOR_FORMS:
            for sent in ({}, {"csrf": "x" * 43}):
                answer = http.post(url, data={**sent, "name": "forged", "role": "supplier", "password": "forged",
                                              "disabled": "1", "one": "1"})
                assert answer.status_code == 403 and "Form refused" in answer.text, (url, sent)
        upload = {"structures": ("export.csv", (SAMPLES / "directory.csv").read_bytes(), "text/csv")}
        assert http.post("/console/directory/import", files=upload).status_code == 403
        assert http.get("/console/queue").status_code == 200  # still logged in
    assert cli(site.config, "accounts", "token", SUPPLIER, "--list") == before
    assert "forged" not in cli(site.config, "accounts", "list")
    log_in(new_page(site.url), SUPPLIER)  # neither disabled nor given another password
    page.goto(f"/console/accounts/{SUPPLIER}")
    issue = page.locator("form", has=page.get_by_role("button", name="Issue a token"))
    issue.locator("input[name=csrf]").evaluate("field => field.remove()")
    with page.expect_response(f"**/console/accounts/{SUPPLIER}/tokens") as answer:
        page.get_by_role("button", name="Issue a token").click()
    assert answer.value.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Form refused")


def test_operator_pages_speak_french(site, new_page):
    page = new_page(site.url, locale="fr-FR")
    page.goto("/console/login")
    page.get_by_label("Identifiant").fill(OPERATOR)
    page.get_by_label("Mot de passe").fill(PASSWORDS[OPERATOR])
    page.get_by_role("button", name="Se connecter").click()
    for link, heading in (("File d'attente", "File d'attente"), ("Débit", "Débit"), ("Remises", "Remises"),
                          ("Annuaire", "Annuaire"), ("Comptes", "Comptes")):
        page.get_by_role("link", name=link, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator("table.accounts")).to_contain_text("fournisseur")


def test_throughput_is_counted_by_the_database(app):
    """gateway.ops.throughput on SQLite and PostgreSQL: flows by minute and hour of their arrival, invoices by hour
    of their judgement and verdict, rules once per invoice or flow they rejected, nothing older than the week."""
    now = datetime(2026, 12, 4, 10, 30, 20, tzinfo=UTC)
    findings = json.dumps([{"stage": "rules", "rule": "BR-1", "message": "m"},
                           {"stage": "rules", "rule": "BR-1", "message": "again"},
                           {"stage": "rules", "rule": "BR-W", "message": "w", "severity": "warning"}])
    arrivals = [timedelta(0), timedelta(seconds=15), timedelta(minutes=1, seconds=5), timedelta(hours=2),
                timedelta(days=8)]
    with session_scope(app.engine) as session:
        for n, ago in enumerate(arrivals):
            flow_findings = '[{"stage": "flow", "rule": "FLOW-X", "message": "m"}]' if n == 2 else "[]"
            session.add(Flow(id=f"f{n}", account=SUPPLIER, original_name="x.xml", size=1, sha256="x",
                             received_at=now - ago, finished_at=now - ago, state=FlowState.INTEGRE,
                             findings=flow_findings))
            session.flush()
            session.add(Invoice(id=f"i{n}", flow_id=f"f{n}", verdict=Verdict.REJECTED if n % 2 else Verdict.ACCEPTED,
                                findings=findings if n % 2 else "[]"))
    found = throughput(app, now)
    per_minute = {b["start"].strftime("%H:%M"): b["flows"] for b in found["flows_per_minute"] if b["flows"]}
    assert per_minute == {"10:29": 1, "10:30": 2}
    assert len(found["flows_per_minute"]) == MINUTES
    assert found["flows_per_minute"][0]["start"] == datetime(2026, 12, 4, 9, 31, tzinfo=UTC)
    per_hour = {b["start"].strftime("%d %H"): b["flows"] for b in found["flows_per_hour"] if b["flows"]}
    assert per_hour == {"04 08": 1, "04 10": 3} and len(found["flows_per_hour"]) == HOURS
    verdicts = {b["start"].strftime("%H"): (b["accepted"], b["rejected"]) for b in found["invoices_per_hour"]
                if b["accepted"] or b["rejected"]}
    assert verdicts == {"08": (0, 1), "10": (2, 1)}
    assert found["invoices"] == {"accepted": 2, "rejected": 2}
    assert found["rules"] == [{"rule": "BR-1", "rejected": 2}, {"rule": "FLOW-X", "rejected": 1}]
    assert throughput(app, now + timedelta(days=30))["invoices"] == {"accepted": 0, "rejected": 0}


def test_flows_are_filtered_by_channel_and_received_times_in_any_time_zone(app):
    """views.flows on SQLite and PostgreSQL: bounds given in another time zone are the same instants."""
    paris = ZoneInfo("Europe/Paris")
    with session_scope(app.engine) as session:
        for n, (channel, received) in enumerate((("api", datetime(2026, 12, 3, 22, 59, tzinfo=UTC)),
                                                 ("zone", datetime(2026, 12, 3, 23, 0, tzinfo=UTC)),
                                                 ("api", datetime(2026, 12, 4, 22, 59, tzinfo=UTC)))):
            session.add(Flow(id=f"f{n}", account=SUPPLIER, original_name="x.xml", size=1, sha256="x", channel=channel,
                             received_at=received))

    def ids(**criteria) -> list[str]:
        return [f["id"] for f in views.flows(app, views.OPERATOR, **criteria).items]

    day = datetime(2026, 12, 4, tzinfo=paris)  # 2026-12-03 23:00 UTC
    assert ids(since=day, until=day + timedelta(days=1)) == ["f2", "f1"]
    assert ids(until=day) == ["f0"]
    assert ids(channel="api") == ["f2", "f0"] and ids(channel="api", since=day) == ["f2"]
    assert ids(channel="sftp") == []
    assert views.channels(app) == ["api", "zone"]


def test_an_import_names_every_bad_row_up_to_a_hundred(tmp_path):
    """`gateway directory import` (what the console's upload calls): a bad row does not hide the next ones; past
    a hundred, the others are counted."""
    config = write_config(tmp_path)
    header = (SAMPLES / "directory.csv").read_text(encoding="utf-8").splitlines()[0]
    export = tmp_path / "many.csv"
    export.write_text("\n".join([header] + ["SIRET;1"] * 105) + "\n", encoding="utf-8")
    refused = CliRunner().invoke(main, ["--config", str(config), "directory", "import", str(export)])
    assert refused.exit_code == 1
    lines = [line.removeprefix("Error: ") for line in refused.stderr.splitlines()
             if line.removeprefix("Error: ").startswith(("many.csv", "..."))]
    assert lines == [f"many.csv line {n}: 2 columns, expected 21" for n in range(2, 102)] + ["... and 5 more bad rows"]
