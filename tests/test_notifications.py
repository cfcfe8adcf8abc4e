"""Notifications against a real `gateway run`: webhooks received by an HTTP server of the test (signatures
checked), e-mail by a real SMTP server (aiosmtpd), retries, dead letters, crashes, and the refusal of targets
on loopback, link-local or private addresses."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import Counter
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner

from gateway.cli import main
from tests.harness import SAMPLES, GatewayProcess, cli, drop, renumber, wait_for, wait_report, write_config, zip_of
from tests.web_harness import RECIPIENT, SUPPLIER, client, operator_token, start, token, web_config, web_gateway

GOOD = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
XSD_INVALID = (SAMPLES / "flows" / "reject-xsd.xml").read_bytes()
FAST_RETRIES = {"retry_base": 0.2, "retry_max": 0.5}
PRIVATE_OK = {"notify": {"allow_private": True}, "delivery": FAST_RETRIES}


class Receiver:
    """A webhook endpoint: an HTTP server on 127.0.0.1 recording every request (headers, body). It answers 500
    to the first `failures` requests of each event, and holds each request until `gate` is set (`arrived`
    counts those it has begun to read)."""

    def __init__(self, port: int = 0, failures: int = 0) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.arrived = 0
        self.gate = threading.Event()
        self.gate.set()
        receiver, lock = self, threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with lock:
                    receiver.arrived += 1
                receiver.gate.wait(60)
                with lock:
                    receiver.requests.append((headers, body))
                    seen = sum(h.get("gateway-event-id") == headers.get("gateway-event-id")
                               for h, _ in receiver.requests)
                self.send_response(500 if seen <= failures else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/gateway"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()

    def events(self, secret: str) -> list[dict]:
        """Every request's event, each signature checked with secret."""
        for headers, body in self.requests:
            assert signed(secret, headers, body), headers
            assert headers["content-type"] == "application/json"
            assert headers["gateway-event-id"] == json.loads(body)["id"]
        return [json.loads(body) for _, body in self.requests]


def signed(secret: str, headers: dict[str, str], body: bytes, tolerance: float = 300) -> bool:
    """What a receiver checks (the README's snippet): the HMAC over "<t>." + body, and a recent t."""
    fields = dict(part.split("=", 1) for part in headers["gateway-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < tolerance


def free_port() -> int:
    """A port nothing listens on (a connection to it is refused), for a server started later."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def deliveries(config: Path, *kinds: str) -> list[dict]:
    return [d for d in json.loads(cli(config, "deliveries", "list", "--json", "--limit", "1000"))
            if d["kind"] in kinds]


def settled(config: Path, count: int, kinds=("webhook",)) -> list[dict]:
    """Wait until count notifications of kinds are made and none is pending any more."""
    def done():
        found = deliveries(config, *kinds)
        return found if len(found) == count and all(d["state"] != "pending" for d in found) else None
    return wait_for(done, 60, f"{count} {'/'.join(kinds)} notifications settled", 0.1)


def subscribe(config: Path, *args: str) -> tuple[int, str | None]:
    """`gateway accounts notify` for acme: the new subscription's id, and the secret printed once."""
    lines = cli(config, "accounts", "notify", SUPPLIER, *args).splitlines()
    secret = next((line.split(" ", 1)[1] for line in lines if line.startswith("secret ")), None)
    return int(lines[0].split()[1].rstrip(":")), secret


def deposited(url: str, bearer: str, number: str) -> str:
    """An invoice deposited over the API by acme, once made available to the mairie: its id."""
    with client(url, bearer) as api:
        answer = api.post("/api/v1/flows", params={"name": f"{number}.xml"}, content=renumber(GOOD, number))
        assert answer.status_code == 202, answer.text
        flow_id = answer.json()["flow_id"]

        def available() -> str | None:
            flow = api.get(f"/api/v1/flows/{flow_id}").json()
            invoice = flow["invoices"][0] if flow["finished_at"] else {}
            return invoice["id"] if invoice.get("status_name") == "MISE_A_DISPOSITION" else None
        return wait_for(available, 60, f"invoice {number} made available", 0.05)


def set_status(url: str, bearer: str, invoice_id: str, status: str, **change: str) -> None:
    with client(url, bearer) as api:
        answer = api.post(f"/api/v1/invoices/{invoice_id}/status", json={"status": status, **change})
        assert answer.status_code == 200, answer.text


def test_status_changes_reach_the_suppliers_webhook_signed_and_once_each(tmp_path, database_url):
    config = web_config(tmp_path, database_url, PRIVATE_OK)
    acme, mairie = token(config, SUPPLIER), token(config, RECIPIENT)
    with Receiver() as receiver, web_gateway(config) as (process, url):
        with client(url, acme) as api:
            made = api.put("/api/v1/subscriptions", json={"webhooks": [{"url": receiver.url}]})
            assert made.status_code == 200, made.text
            [subscription] = made.json()
            secret = subscription["secret"]
            assert secret and subscription["events"] == ["flow.finished", "invoice.status"]
            # listed without its secret; the same list again keeps it (same id, same secret, not shown)
            assert api.get("/api/v1/subscriptions").json()[0]["secret"] is None
            again = api.put("/api/v1/subscriptions", json={"webhooks": [{"url": receiver.url}]}).json()
            assert [(s["id"], s["secret"]) for s in again] == [(subscription["id"], None)]
        invoice_id = deposited(url, acme, "NOTIF-1")
        set_status(url, mairie, invoice_id, "SERVICE_FAIT")
        set_status(url, mairie, invoice_id, "MISE_EN_PAIEMENT")
        # DEPOSEE, MISE_A_DISPOSITION, SERVICE_FAIT, MISE_EN_PAIEMENT and the flow's end
        notified = settled(config, 5)
        # the gateway has stopped: no attempt is under way
    assert {d["state"] for d in notified} == {"delivered"} and {d["attempts"] for d in notified} == {1}
    events = receiver.events(secret)
    assert not any(signed("another secret of 16+", *request) for request in receiver.requests)
    assert len(events) == 5 and len({e["id"] for e in events}) == 5
    statuses = Counter(e["data"]["status"] for e in events if e["type"] == "invoice.status")
    assert statuses == Counter(["DEPOSEE", "MISE_A_DISPOSITION", "SERVICE_FAIT", "MISE_EN_PAIEMENT"])
    paid = next(e for e in events if e["type"] == "invoice.status" and e["data"]["status"] == "MISE_EN_PAIEMENT")
    assert {k: paid["data"][k] for k in ("invoice_id", "number", "supplier", "recipient", "status_code", "actor",
                                         "reason_code")} == {
        "invoice_id": invoice_id, "number": "NOTIF-1", "supplier": SUPPLIER, "recipient": RECIPIENT,
        "status_code": "11", "actor": RECIPIENT, "reason_code": None}
    finished = next(e for e in events if e["type"] == "flow.finished")
    assert finished["data"]["state"] == "INTEGRE" and finished["data"]["counts"] == {
        "invoices": 1, "accepted": 1, "rejected": 0}
    assert secret not in process.log.read_text()


def test_a_notification_is_delivered_once_across_a_sigkill(tmp_path, database_url):
    port = free_port()  # the receiver is down until the gateway has been killed
    config = web_config(tmp_path, database_url, {**PRIVATE_OK, "delivery": {**FAST_RETRIES, "max_attempts": 1000}})
    acme, mairie = token(config, SUPPLIER), token(config, RECIPIENT)
    _, secret = subscribe(config, "--webhook", f"http://127.0.0.1:{port}/hook", "--events", "invoice.status")
    process = GatewayProcess(config)
    try:
        url = start(process)
        invoice_id = deposited(url, acme, "CRASH-1")
        set_status(url, mairie, invoice_id, "SERVICE_FAIT")  # committed, with its notification, once answered
        # DEPOSEE, MISE_A_DISPOSITION and SERVICE_FAIT all tried, none delivered
        wait_for(lambda: len([d for d in deliveries(config, "webhook") if d["last_error"]]) == 3, 30,
                 "three notifications tried", 0.1)
    finally:
        process.kill()
    assert not [d for d in deliveries(config, "webhook") if d["state"] != "pending"]
    with Receiver(port) as receiver, web_gateway(config):
        notified = settled(config, 3)
    assert {d["state"] for d in notified} == {"delivered"}
    events = receiver.events(secret)
    assert len(events) == 3 and len({e["id"] for e in events}) == 3
    assert sorted(e["data"]["status"] for e in events) == ["DEPOSEE", "MISE_A_DISPOSITION", "SERVICE_FAIT"]


def test_a_webhook_answering_500_three_times_gets_it_at_the_fourth_attempt(tmp_path):
    config = web_config(tmp_path, overrides=PRIVATE_OK)
    with Receiver(failures=3) as receiver, web_gateway(config):
        _, secret = subscribe(config, "--webhook", receiver.url, "--events", "flow.finished")
        drop(tmp_path, SUPPLIER, "retried.zip", zip_of({"a.xml": renumber(GOOD, "RETRY-1"),
                                                         "b.xml": renumber(XSD_INVALID, "RETRY-2")}))
        [notified] = settled(config, 1)
    assert notified["state"] == "delivered" and notified["attempts"] == 4 and notified["invoice_id"] is None
    events = receiver.events(secret)  # each attempt signed afresh
    assert len(events) == 4 and len({json.dumps(e) for e in events}) == 1  # the same event, the same body
    data = events[0]["data"]
    assert events[0]["type"] == "flow.finished" and data["name"] == "retried.zip"
    assert data["state"] == "INTEGRE_PARTIEL" and data["counts"] == {"invoices": 2, "accepted": 1, "rejected": 1}
    [rejected] = data["rejected"]
    assert rejected["number"] == "RETRY-2" and rejected["rules"] and data["errors"] == []
    flow = json.loads(cli(config, "flows", "show", notified["flow_id"], "--json"))
    failed = [e for e in flow["events"] if e["kind"] == "delivery_failed"]
    assert len(failed) == 3 and all("answered 500" in e["error"] for e in failed)
    assert [e["what"] for e in flow["events"] if e["kind"] == "delivered"].count("webhook") == 1


class Inbox:
    """An aiosmtpd handler keeping every message, and an authenticator accepting one login."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (auth_data.login, auth_data.password) == (b"gateway", b"smtp-pass-1")
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # a test server on 127.0.0.1
def test_status_changes_are_sent_by_email_to_a_real_smtp_server(tmp_path):
    inbox, port = Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                      auth_required=True, auth_require_tls=False)
    smtp.start()
    try:
        config = web_config(tmp_path, overrides={"smtp": {
            "port": port, "sender": "factures@gateway.example", "username": "gateway", "password": "smtp-pass-1"}})
        acme, mairie = token(config, SUPPLIER), token(config, RECIPIENT)
        with web_gateway(config) as (_, url):
            subscribe(config, "--email", "compta@acme.example", "--events", "invoice.status")
            invoice_id = deposited(url, acme, "MAIL-1")
            set_status(url, mairie, invoice_id, "SUSPENDUE", reason="PJ_ABS", comment="bon de commande manquant")
            settled(config, 3, kinds=("email",))
    finally:
        smtp.stop()
    assert {sender for sender, _, _ in inbox.messages} == {"factures@gateway.example"}
    assert {tuple(to) for _, to, _ in inbox.messages} == {("compta@acme.example",)}
    assert len(inbox.logins) == 3
    messages = [email.message_from_bytes(raw, policy=default_policy) for _, _, raw in inbox.messages]
    assert sorted(m["Subject"] for m in messages) == sorted(
        f"Invoice MAIL-1: {s}" for s in ("DEPOSEE", "MISE_A_DISPOSITION", "SUSPENDUE"))
    suspended = next(m for m in messages if "SUSPENDUE" in m["Subject"])
    body = suspended.get_content()
    assert "New status: SUSPENDUE (06)" in body and "Reason: PJ_ABS: bon de commande manquant" in body
    assert "MAIL-1" in body and suspended["To"] == "compta@acme.example"
    event_id = body.rsplit("Event ", 1)[1].strip()
    assert suspended["Message-ID"] == f"<{event_id}@gateway.example>"
    assert len({m["Message-ID"] for m in messages}) == 3


def _refused(config: Path, target: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(config), "accounts", "notify", SUPPLIER, "--webhook", target])
    assert result.exit_code == 2, result.output
    return result.output


def test_webhooks_to_loopback_link_local_or_private_addresses_are_refused(tmp_path):
    config = web_config(tmp_path)  # [notify] allow_private = false, the default
    for target, kind in (("http://127.0.0.1:8080/hook", "loopback"), ("http://localhost/hook", "loopback"),
                         ("http://169.254.169.254/latest/meta-data/", "link-local"), ("http://[::1]/", "loopback"),
                         ("http://[::ffff:127.0.0.1]/", "loopback"), ("https://10.1.2.3/", "private"),
                         ("http://192.168.0.1/", "private"), ("http://[fd00::1]/", "private"),
                         ("http://0.0.0.0/", "unspecified")):
        assert f"a {kind} address" in _refused(config, target)
    assert "http:// or https://" in _refused(config, "file:///etc/passwd")
    assert "credentials" in _refused(config, "https://user:pw@example.org/")
    ops = operator_token(config)
    with web_gateway(config) as (_, url), client(url, token(config, SUPPLIER)) as api, client(url, ops) as operator:
        for target in ("http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data/"):
            answer = api.put("/api/v1/subscriptions", json={"webhooks": [{"url": target}]})
            assert answer.status_code == 422 and answer.json()["type"] == "urn:gateway:problem:webhook-target-refused"
        for body in ({"webhooks": [{"url": "ftp://example.org/"}]}, {"emails": [{"address": "no address"}]},
                     {"emails": [{"address": "a@example.org", "events": ["invoice.paid"]}]},
                     {"emails": [{"address": "a@example.org", "events": []}]},
                     {"emails": [{"address": "a@example.org"}, {"address": "a@example.org"}]}):
            answer = api.put("/api/v1/subscriptions", json=body)
            assert answer.status_code == 422 and answer.json()["type"] == "urn:gateway:problem:subscription-invalid"
        assert api.get("/api/v1/subscriptions").json() == []
        for answer in (operator.get("/api/v1/subscriptions"), operator.put("/api/v1/subscriptions", json={})):
            assert answer.status_code == 403 and answer.json()["type"] == "urn:gateway:problem:account-required"
    assert cli(config, "accounts", "notify", SUPPLIER, "--list").count("\n") == 2  # headers only


def test_a_removed_subscription_or_a_target_refused_at_the_attempt_dead_letters_at_once(tmp_path):
    config = web_config(tmp_path, overrides=PRIVATE_OK)
    with web_gateway(config) as (_, url):
        invoice_id = deposited(url, token(config, SUPPLIER), "LATER-1")
    with Receiver() as receiver:
        # with the gateway stopped: a notification queued, then its subscription removed
        removed, _ = subscribe(config, "--webhook", receiver.url, "--events", "invoice.status")
        cli(config, "status", "set", invoice_id, "SERVICE_FAIT")
        cli(config, "accounts", "notify", SUPPLIER, "--remove", str(removed))
        [gone] = deliveries(config, "webhook")
        assert (gone["state"], gone["attempts"], gone["last_error"]) == (
            "dead", 0, f"subscription {removed} was removed")
        # another to a target allowed then, refused at the attempt once the operator forbids private addresses
        subscribe(config, "--webhook", receiver.url, "--events", "invoice.status")  # SQLite: the same id again
        cli(config, "status", "set", invoice_id, "MANDATEE")
        write_config(tmp_path, {"validate": {"processes": 1}, "delivery": FAST_RETRIES})
        with web_gateway(config):
            refused, again = settled(config, 2)  # newest first
    assert again == gone
    assert (refused["state"], refused["attempts"]) == ("dead", 1)
    assert "127.0.0.1 is a loopback address" in refused["last_error"]
    assert receiver.requests == []


def test_notifications_failing_until_max_attempts_are_dead_and_listed(tmp_path):
    hook_port = free_port()
    config = web_config(tmp_path, overrides={**PRIVATE_OK, "delivery": {"max_attempts": 3, "retry_base": 0.1,
                                                                        "retry_max": 0.2},
                                             "smtp": {"port": free_port(), "timeout": 2}})
    _, secret = subscribe(config, "--webhook", f"http://127.0.0.1:{hook_port}/hook", "--events", "flow.finished")
    subscribe(config, "--email", "ops@acme.example", "--events", "flow.finished")
    listed = cli(config, "accounts", "notify", SUPPLIER, "--list")
    assert f"http://127.0.0.1:{hook_port}/hook" in listed and "ops@acme.example" in listed and secret not in listed
    with web_gateway(config):
        drop(tmp_path, SUPPLIER, "dead.xml", renumber(GOOD, "DEAD-1"))
        dead = settled(config, 2, kinds=("webhook", "email"))
        assert [(d["kind"], d["state"], d["attempts"], d["invoice_id"]) for d in reversed(dead)] == [
            ("webhook", "dead", 3, None), ("email", "dead", 3, None)]
        assert all(d["last_error"] for d in dead)
        listed = json.loads(cli(config, "deliveries", "list", "--state", "dead", "--json"))
        assert {d["id"] for d in dead} <= {d["id"] for d in listed}
        table = cli(config, "deliveries", "list", "--state", "dead")
        assert "webhook" in table and "email" in table and dead[0]["flow_id"] in table
        # once the receiver is up, an operator requeues the webhook's notification
        webhook = next(d for d in dead if d["kind"] == "webhook")
        with Receiver(hook_port) as receiver:
            cli(config, "deliveries", "retry", str(webhook["id"]))
            wait_for(lambda: next(d for d in deliveries(config, "webhook"))["state"] == "delivered", 30,
                     "the requeued notification", 0.1)
    assert [e["type"] for e in (json.loads(body) for _, body in receiver.requests)] == ["flow.finished"]


def test_a_slow_webhook_never_holds_up_a_flow(tmp_path):
    config = web_config(tmp_path, overrides={**PRIVATE_OK, "notify": {"allow_private": True, "timeout": 90}})
    with Receiver() as receiver, web_gateway(config):
        receiver.gate.clear()  # the receiver hangs on every request until the flows are done
        subscribe(config, "--webhook", receiver.url)
        for n in (1, 2):
            drop(tmp_path, SUPPLIER, f"slow-{n}.xml", renumber(GOOD, f"SLOW-{n}"))
            wait_report(tmp_path, SUPPLIER, f"slow-{n}.xml", timeout=20)
            wait_for(lambda: receiver.arrived == 1, 20, "a notification hanging")
        assert receiver.requests == [] and len(deliveries(config, "webhook")) == 6
        receiver.gate.set()
        assert {d["state"] for d in settled(config, 6)} == {"delivered"}
