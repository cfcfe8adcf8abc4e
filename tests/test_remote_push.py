"""Push: deliveries uploaded onto an account's own SFTP server, its host key pinned.

The remote server is OpenSSH's sshd on 127.0.0.1, or another gateway: the embedded server of a second
zones tree, where what is pushed becomes a flow.
"""

from __future__ import annotations

import hashlib
import json
import socketserver
import threading
from types import SimpleNamespace

import paramiko
import pytest

from gateway import config as config_module
from gateway.app import App
from gateway.engine.runner import Gateway
from tests.harness import (
    REPORT_NS,
    SAMPLES,
    cli,
    drop,
    files,
    load_samples,
    outbox,
    wait_for,
    wait_report,
    write_config,
)
from tests.remote_harness import RemoteSshd, key_line, needs_sshd, set_remote
from tests.sftp_harness import make_key, public

INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
RECIPIENT, SUPPLIER = "mairie-exemple", "acme"


@pytest.fixture
def site(tmp_path, request):
    """A running gateway with quick retries (3 attempts; a test's `delivery` parameter may set others), and an
    sshd, not yet started, serving remote/."""
    delivery = getattr(request, "param", {"max_attempts": 3, "retry_base": 0.05, "retry_max": 0.1})
    config = write_config(tmp_path, {"delivery": delivery, "remote": {"timeout": 5.0}})
    load_samples(config)
    sshd = RemoteSshd(tmp_path / "sshd", tmp_path / "remote")
    gateway = Gateway(App.from_settings(config_module.load(config)))
    gateway.start()
    try:
        yield SimpleNamespace(root=tmp_path, config=config, sshd=sshd, remote=tmp_path / "remote")
    finally:
        gateway.stop()
        sshd.stop()


def _deliveries(config, *args) -> list[dict]:
    return [d for d in json.loads(cli(config, "deliveries", "list", "--json", *args)) if d["kind"] == "invoice"]


def _events(config, flow_id: str) -> list[dict]:
    return json.loads(cli(config, "flows", "show", flow_id, "--json"))["events"]


def _folder(site, name: str):
    folder = site.remote / name
    folder.mkdir()
    return folder


@needs_sshd
def test_invoice_and_status_returns_land_on_the_accounts_servers(site):
    """Pinned key accepted: the invoice reaches the recipient's server under its final name, byte for byte,
    and the supplier's status-returns reach its own; nothing temporary is left, nothing goes to the zones."""
    sshd = site.sshd.start()
    to_recipient, to_supplier = _folder(site, "mairie"), _folder(site, "acme")
    set_remote(site.config, RECIPIENT, "push", sshd.url(to_recipient), sshd.key, sshd.host_public_key())
    set_remote(site.config, SUPPLIER, "push", sshd.url(to_supplier), sshd.key, sshd.host_public_key())
    drop(site.root, SUPPLIER, "inv.xml", INVOICE)
    report = wait_report(site.root, SUPPLIER, "inv.xml")
    assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INTEGRE"

    [delivery] = wait_for(lambda: _deliveries(site.config, "--state", "delivered") or None, what="the push")
    assert [p.name for p in to_recipient.iterdir()] == [delivery["file_name"]]
    assert (to_recipient / delivery["file_name"]).read_bytes() == INVOICE
    assert delivery["where"] == f"{sshd.url(to_recipient)}/{delivery['file_name']}"
    wait_for(lambda: files(to_supplier, ".cdar.xml") or None, what="status-returns pushed to the supplier")
    assert not [p for p in to_supplier.iterdir() if p.name.startswith(".")]
    assert files(outbox(site.root, RECIPIENT), ".xml") == []
    assert files(outbox(site.root, SUPPLIER), ".cdar.xml") == []


def _other_key_same_type(site) -> str:
    return public(make_key(site.root / "not_the_server_key")).read_text()


def _key_of_another_type(site) -> str:
    return key_line(paramiko.ECDSAKey.generate())


@pytest.mark.parametrize("pinned", [_other_key_same_type, _key_of_another_type], ids=["changed", "unknown"])
def test_wrong_pinned_key_is_dead_at_once(site, sftp_site, pinned):
    """A server that does not show the pinned key is refused without retry: an operator must act."""
    server = sftp_site()
    url = f"sftp://mairie-exemple@127.0.0.1:{server.port}/in"
    set_remote(site.config, RECIPIENT, "push", url, server.key, pinned(site))
    drop(site.root, SUPPLIER, "inv.xml", INVOICE)
    [dead] = wait_for(lambda: _deliveries(site.config, "--state", "dead") or None, what="a dead delivery")
    assert dead["attempts"] == 1 and "not the pinned" in dead["last_error"]
    kinds = [e["kind"] for e in _events(site.config, dead["flow_id"])]
    assert "delivery_dead" in kinds and "delivery_failed" not in kinds
    assert server.flows() == []


def test_push_to_another_gateway_becomes_a_flow_there(site, sftp_site):
    """Another gateway's embedded server takes the hidden temporary name, then the rename: the invoice becomes
    one flow there, sent by the account the push logs in as, byte for byte."""
    server = sftp_site()
    url = f"sftp://acme@127.0.0.1:{server.port}/in"
    set_remote(site.config, RECIPIENT, "push", url, server.key, key_line(server.host_key))
    drop(site.root, SUPPLIER, "inv.xml", INVOICE)
    [delivery] = wait_for(lambda: _deliveries(site.config, "--state", "delivered") or None, what="the push")
    assert delivery["where"] == f"{url}/{delivery['file_name']}"
    [flow] = wait_for(lambda: server.flows() or None, what="the flow on the other gateway")
    assert (flow.account, flow.channel, flow.original_name) == ("acme", "sftp", delivery["file_name"])
    assert flow.sha256 == hashlib.sha256(INVOICE).hexdigest()


@needs_sshd
def test_server_down_retried_then_dead_then_delivered_once_after_retry(site):
    """Server down: each attempt fails (delivery_failed with its next attempt) until dead-lettered; once the
    server is back, `gateway deliveries retry` delivers the invoice, once."""
    to_recipient = _folder(site, "mairie")
    set_remote(site.config, RECIPIENT, "push", site.sshd.url(to_recipient), site.sshd.key,
               site.sshd.host_public_key())
    drop(site.root, SUPPLIER, "inv.xml", INVOICE)
    [dead] = wait_for(lambda: _deliveries(site.config, "--state", "dead") or None, 20, "a dead delivery")
    assert dead["attempts"] == 3 and "127.0.0.1" in dead["last_error"]
    events = _events(site.config, dead["flow_id"])
    failed = [e for e in events if e["kind"] == "delivery_failed"]
    assert [e["attempt"] for e in failed] == [1, 2] and all(e["next_attempt_at"] for e in failed)
    assert [e["kind"] for e in events].count("delivery_dead") == 1

    site.sshd.start()
    cli(site.config, "deliveries", "retry", str(dead["id"]))
    wait_for(lambda: dead["id"] in [d["id"] for d in _deliveries(site.config, "--state", "delivered")],
             what="the requeued delivery")
    assert [p.read_bytes() for p in to_recipient.iterdir()] == [INVOICE]
    delivered = [e for e in _events(site.config, dead["flow_id"])
                 if e["kind"] == "delivered" and e["what"] == "invoice"]
    assert len(delivered) == 1


class DroppingServer(socketserver.TCPServer):
    """A server on 127.0.0.1 that closes each connection it accepts before any SSH is said, counting them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), socketserver.BaseRequestHandler)
        self.accepted = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def process_request(self, request, client_address) -> None:
        self.accepted += 1
        self.shutdown_request(request)


def test_a_dropped_connection_is_one_upload_per_attempt_of_the_queue(site):
    """The server drops every connection: each attempt of the delivery queue connects once (the channel does not
    retry on its own), until the delivery is dead-lettered, each failure visible with its attempt."""
    server = DroppingServer()
    try:
        url = f"sftp://mairie-exemple@127.0.0.1:{server.server_address[1]}/in"
        set_remote(site.config, RECIPIENT, "push", url, site.sshd.key, site.sshd.host_public_key())
        drop(site.root, SUPPLIER, "inv.xml", INVOICE)
        [dead] = wait_for(lambda: _deliveries(site.config, "--state", "dead") or None, 20, "a dead delivery")
        assert dead["attempts"] == 3 and server.accepted == 3
        failed = [e for e in _events(site.config, dead["flow_id"]) if e["kind"] == "delivery_failed"]
        assert [e["attempt"] for e in failed] == [1, 2]
    finally:
        server.shutdown()
        server.server_close()


@needs_sshd
@pytest.mark.parametrize("site", [{"max_attempts": 100, "retry_base": 0.2, "retry_max": 0.5}], indirect=True)
def test_server_back_the_queue_delivers_once_without_an_operator(site):
    """Server down: attempts fail and are rescheduled; once the server is back, the queue's next attempt delivers
    the invoice, once, with no `deliveries retry`."""
    to_recipient = _folder(site, "mairie")
    set_remote(site.config, RECIPIENT, "push", site.sshd.url(to_recipient), site.sshd.key,
               site.sshd.host_public_key())
    drop(site.root, SUPPLIER, "inv.xml", INVOICE)
    [failing] = wait_for(lambda: [d for d in _deliveries(site.config) if d["attempts"] >= 2] or None,
                         what="two failed attempts")
    assert failing["state"] == "pending"

    site.sshd.start()
    [delivered] = wait_for(lambda: _deliveries(site.config, "--state", "delivered") or None, 30, "the push")
    assert [p.read_bytes() for p in to_recipient.iterdir()] == [INVOICE]
    events = _events(site.config, delivered["flow_id"])
    failed = [e["attempt"] for e in events if e["kind"] == "delivery_failed"]
    assert failed == list(range(1, delivered["attempts"])) and len(failed) >= 2
    assert [(e["kind"], e["attempt"]) for e in events if e["kind"] == "delivered" and e["what"] == "invoice"] == [
        ("delivered", delivered["attempts"])]
    assert "delivery_requeued" not in [e["kind"] for e in events]
