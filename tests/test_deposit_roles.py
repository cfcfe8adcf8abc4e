"""An account deposits only what its role allows, whatever the channel: invoices come from suppliers, status
messages from the recipients of the invoices they answer. Anything else is refused whole (FLOW-ROLE-REFUSED,
REJETE), with a report saying why, through the zone, SFTP, the API and the console alike."""

from __future__ import annotations

import io
import json
import re

import httpx

from tests.harness import REPORT_NS, SAMPLES, cli, drop, renumber, wait_finished, wait_report
from tests.sftp_harness import PASSWORDS

INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()  # to mairie-exemple
SUPPLIER, RECIPIENT = "acme", "mairie-exemple"


def _status_update(invoice_id: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><statusUpdate xmlns="urn:gateway:status:1">'
            f"<invoiceId>{invoice_id}</invoiceId><statusCode>07</statusCode></statusUpdate>").encode()


def _outcome(site, account: str, name: str) -> tuple[str, list[str], str]:
    """The flow's final state, the rules of its report and their messages, once it is finished."""
    report = wait_report(site.root, account, name, timeout=30)
    wait_finished(site.config, report.findtext("r:flow/r:flowId", namespaces=REPORT_NS))
    return (report.findtext("r:flow/r:state", namespaces=REPORT_NS),
            report.xpath("//r:error/r:rule/text()", namespaces=REPORT_NS),
            " ".join(report.xpath("//r:error/r:message/text()", namespaces=REPORT_NS)))


def _console_deposit(base_url: str, account: str, name: str, content: bytes) -> httpx.Response:
    """Log in to the console as account and send the deposit form with its CSRF token."""
    with httpx.Client(base_url=base_url, timeout=30) as browser:
        form = browser.get("/console/login")
        login_token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        logged = browser.post("/console/login", data={"name": account, "password": PASSWORDS[account],
                                                      "csrf": login_token, "next": "/console/"})
        assert logged.status_code == 303, logged.text
        page = browser.get("/console/deposit")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        return browser.post("/console/deposit", files={"file": (name, content, "application/xml")},
                            data={"csrf": token})


def test_a_recipient_deposits_no_invoice_on_any_channel(sftp_site):
    site = sftp_site()
    base_url = f"http://127.0.0.1:{site.gateway.web.port}"
    refused = ("REJETE", ["FLOW-ROLE-REFUSED"])

    drop(site.root, RECIPIENT, "by-zone.xml", renumber(INVOICE, "ROLE-1"))
    with site.client(RECIPIENT) as client, client.open_sftp() as sftp:
        sftp.putfo(io.BytesIO(renumber(INVOICE, "ROLE-2")), "/in/by-sftp.xml")
    token = cli(site.config, "accounts", "token", RECIPIENT).strip()
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        taken = api.post("/api/v1/flows", params={"name": "by-api.xml"}, content=renumber(INVOICE, "ROLE-3"))
        assert taken.status_code == 202, taken.text
    assert _console_deposit(base_url, RECIPIENT, "by-console.xml", renumber(INVOICE, "ROLE-4")).status_code == 303

    for name in ("by-zone.xml", "by-sftp.xml", "by-api.xml", "by-console.xml"):
        state, rules, message = _outcome(site, RECIPIENT, name)
        assert (state, rules) == refused, name
        assert "Account 'mairie-exemple' is a recipient account: it may not deposit invoices" in message
    channels = {f["original_name"]: f["channel"] for f in json.loads(cli(site.config, "flows", "list", "--json"))}
    assert {channels[n] for n in ("by-zone.xml", "by-sftp.xml", "by-api.xml", "by-console.xml")} == {
        "zone", "sftp", "api"}
    invoices = json.loads(cli(site.config, "flows", "show", _flow_id(site, "by-api.xml"), "--json"))["invoices"]
    assert invoices == []  # refused whole: nothing judged, nothing delivered
    assert not list((site.zone(RECIPIENT) / "out").glob("*-001.xml"))


def test_a_supplier_deposits_invoices_and_no_status_message(sftp_site):
    """The supplier's invoice goes through; its status message on that invoice is refused; the recipient's own is
    applied."""
    site = sftp_site()
    drop(site.root, SUPPLIER, "invoice.xml", renumber(INVOICE, "ROLE-5"))
    assert _outcome(site, SUPPLIER, "invoice.xml")[:2] == ("INTEGRE", [])
    invoice_id = json.loads(cli(site.config, "invoices", "show", "ROLE-5", "--json"))["id"]

    drop(site.root, SUPPLIER, "status.xml", _status_update(invoice_id))
    state, rules, message = _outcome(site, SUPPLIER, "status.xml")
    assert (state, rules) == ("REJETE", ["FLOW-ROLE-REFUSED"])
    assert "is a supplier account: it may not deposit status messages" in message
    assert json.loads(cli(site.config, "invoices", "show", invoice_id, "--json"))["status_name"] != "SERVICE_FAIT"

    drop(site.root, RECIPIENT, "status.xml", _status_update(invoice_id))
    assert _outcome(site, RECIPIENT, "status.xml")[:2] == ("INTEGRE", [])
    assert json.loads(cli(site.config, "invoices", "show", invoice_id, "--json"))["status_name"] == "SERVICE_FAIT"


def _flow_id(site, name: str) -> str:
    return next(f["id"] for f in json.loads(cli(site.config, "flows", "list", "--json")) if f["original_name"] == name)
