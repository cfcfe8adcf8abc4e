"""No sender exhausts the embedded SFTP server: a flood of silent connections from many addresses starves no
supplier, open files are capped per connection and per account, an account's in/ has a quota (temporary
uploads included), temporary uploads left behind expire, and `gateway queue` shows what each zone holds."""

from __future__ import annotations

import io
import json
import os
import selectors
import socket
import threading
import time
from pathlib import Path

import paramiko
import pytest
from structlog.testing import capture_logs

from tests.harness import SAMPLES, GatewayProcess, ack_for_name, cli, renumber, wait_for, write_config
from tests.sftp_harness import OpenSSH, known_hosts, log_events, make_key, need_openssh_client, public, sftp_port

INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
ATTACKERS = [f"127.0.0.{n}" for n in range(2, 22)]  # 20 loopback addresses
PER_ATTACKER = 10
GRACE = 4.0


class Flood:
    """Silent TCP connections from each source address, PER_ATTACKER of them, each opened again (after a
    pause) when the server closes it: they never send a byte."""

    PAUSE = 0.5  # seconds before an address opens again the connections the server closed

    def __init__(self, port: int, sources: list[str]) -> None:
        self.port, self.sources = port, sources
        self.stopping = threading.Event()
        self.admitted = 0  # connections that got the server's banner
        self.refused = 0  # connections closed before any byte
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._hold, args=(source,), daemon=True) for source in sources]

    def start(self) -> Flood:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def held(self) -> int:
        """Connections open now that the server admitted."""
        with self._lock:
            return sum(self._held.values())

    def _hold(self, source: str) -> None:
        selector = selectors.DefaultSelector()
        greeted: dict[socket.socket, bool] = {}
        try:
            while not self.stopping.is_set():
                while len(greeted) < PER_ATTACKER:
                    try:
                        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5,
                                                        source_address=(source, 0))
                    except OSError:
                        break
                    greeted[sock] = False
                    selector.register(sock, selectors.EVENT_READ)
                deadline = time.monotonic() + self.PAUSE
                while not self.stopping.is_set() and (left := deadline - time.monotonic()) > 0:
                    for key, _ in selector.select(left):
                        self._read(key.fileobj, greeted, selector)
                with self._lock:
                    self._held[source] = sum(greeted.values())
        finally:
            for sock in greeted:
                sock.close()
            selector.close()

    def _read(self, sock: socket.socket, greeted: dict[socket.socket, bool], selector) -> None:
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if data:
            if not greeted[sock]:
                greeted[sock] = True
                with self._lock:
                    self.admitted += 1
            return
        with self._lock:
            self.refused += not greeted[sock]
        selector.unregister(sock)
        del greeted[sock]
        sock.close()


def _log(root: Path) -> list[dict]:
    return log_events(root / "gateway.log")


def _penalised(root: Path) -> bool:
    return any(line.get("event") == "sftp_connection_refused" and line.get("reason") == "penalty"
               for line in _log(root))


@pytest.mark.slow  # 20 addresses holding connections open until the server drops them
def test_a_silent_flood_from_20_addresses_starves_no_supplier(tmp_path):
    """200 silent connections from 20 addresses, opened again as the server closes them, while a supplier
    uploads 20 files with OpenSSH's sftp, one connection each: every upload succeeds and is acknowledged. The
    flood filled the startups (refused at random, the busiest closed for the supplier), its connections were
    closed at login_grace and its addresses then refused at once (penalty); the supplier's never were."""
    need_openssh_client()
    config = write_config(tmp_path, {"sftp": {"enabled": True, "port": 0, "login_grace": GRACE,
                                              "max_startups": "10:30:60", "penalty_seconds": 60.0}})
    key = make_key(tmp_path / "acme_key")  # no directory: the invoices are rejected, and acknowledged all the same
    cli(config, "accounts", "add", "acme", "--role", "supplier", "--key", str(public(key)))
    gateway = GatewayProcess(config)
    gateway.start()
    try:
        port = wait_for(lambda: sftp_port(tmp_path / "gateway.log"), 60, "the SFTP server")
        host_key = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "var" / "sftp_host_ed25519_key"))
        supplier = OpenSSH(port, "acme", known_hosts(tmp_path / "known_hosts", port, host_key), key=key)
        flood = Flood(port, ATTACKERS).start()
        results = []

        def upload(numbers: range) -> None:
            for n in numbers:
                name = f"flood-{n}.xml"
                (tmp_path / name).write_bytes(renumber(INVOICE, f"FLOOD-{n}"))
                results.append(supplier.run(tmp_path, [f"put {name} /in/"]))
        try:
            wait_for(lambda: flood.held() >= 55, 30, "the flood holding the startups")  # full at 60
            began = time.monotonic()
            upload(range(10))  # while the flood holds the startups
            wait_for(lambda: _penalised(tmp_path), GRACE + 30, "the flood's addresses penalised", interval=0.5)
            upload(range(10, 20))  # while its addresses are refused at once
            uploading = time.monotonic() - began
        finally:
            flood.stop()
        assert [(r.returncode, r.stderr) for r in results if r.returncode] == []
        for n in range(20):
            wait_for(lambda: ack_for_name(tmp_path, "acme", f"flood-{n}.xml"), 60, f"acknowledgement {n}")
    finally:
        assert gateway.stop() == 0
    log = _log(tmp_path)
    refused = [(line["ip"], line["reason"]) for line in log if line.get("event") == "sftp_connection_refused"]
    timeouts = {line["ip"] for line in log if line.get("event") == "sftp_login_timeout"}
    closed = {line["ip"] for line in log if line.get("event") == "sftp_startup_closed"}
    assert {reason for _, reason in refused} >= {"startups", "penalty"}
    assert "127.0.0.1" not in {ip for ip, _ in refused} | timeouts | closed
    assert timeouts and timeouts <= set(ATTACKERS)
    assert {ip for ip, reason in refused if reason == "penalty"} <= set(ATTACKERS)
    print(f"\n20 uploads in {uploading:.1f} s; flood: {flood.admitted} admitted, {flood.refused} refused at once, "
          f"{len(closed)} addresses had a startup closed for the supplier")


def _upload(sftp: paramiko.SFTPClient, path: str, size: int) -> str | None:
    """Write size bytes to path in chunks, each answered before the next: the server's message if refused."""
    try:
        with sftp.open(path, "w") as handle:
            for offset in range(0, size, 32768):
                handle.write(b"x" * min(32768, size - offset))
                handle.flush()
    except OSError as exc:
        return str(exc)
    return None


def test_open_files_are_capped_per_connection_and_per_account(sftp_site):
    """Past max_open_handles in a connection, or max_open_handles_per_account over its connections, an open fails
    with a message naming the limit; a handle closed or a connection ended gives its place back."""
    site = sftp_site(max_open_handles=5, max_open_handles_per_account=8)
    with site.client() as first, site.client() as second:
        one, two = first.open_sftp(), second.open_sftp()
        held = [one.open(f"/in/.a{n}.xml.part", "w") for n in range(5)]
        with pytest.raises(OSError, match=r"max_open_handles \(5\) per connection"):
            one.open("/in/.a5.xml.part", "w")
        with pytest.raises(OSError, match=r"max_open_handles \(5\) per connection"):
            one.listdir("/in")  # a folder read is a handle too
        held += [two.open(f"/in/.b{n}.xml.part", "w") for n in range(3)]
        with pytest.raises(OSError, match=r"max_open_handles_per_account \(8\)"):
            two.open("/in/.b3.xml.part", "w")
        held.pop(0).close()
        held.append(two.open("/in/.b3.xml.part", "w"))
    with site.client() as again:  # the two connections ended: every handle given back, once the server saw them end
        sftp = again.open_sftp()

        def five_open() -> bool:
            opened = []
            try:
                opened += [sftp.open(f"/in/.c{n}.xml.part", "w") for n in range(5)]
                return True
            except OSError as refused:
                assert "max_open_handles_per_account" in str(refused)
                return False
            finally:
                for handle in opened:
                    handle.close()

        wait_for(five_open, what="the handles of the ended connections given back")


def test_a_closed_handle_is_free_when_its_close_is_answered(sftp_site):
    """The account's place of a closed file is given back before the client hears the close: an open on another
    connection right after it is never refused (it was, now and then, when the count followed the answer)."""
    site = sftp_site(max_open_handles=5, max_open_handles_per_account=2)
    with site.client() as first, site.client() as second:
        sessions = [first.open_sftp(), second.open_sftp()]
        held = [sessions[0].open("/in/.x0.xml.part", "w"), sessions[1].open("/in/.y0.xml.part", "w")]
        for n in range(1, 3001):
            held.pop(0).close()  # the other connection's open follows at once
            held.append(sessions[n % 2].open(f"/in/.{'xy'[n % 2]}{n}.xml.part", "w"))
        assert len(held) == 2


def test_inbox_quota_counts_temporary_uploads_and_says_so(sftp_site):
    """What an account holds in in/ is capped in bytes and in files, temporary uploads included: the write that
    goes past inbox_max_bytes is refused with a message naming it and its upload deleted, an upload past
    inbox_max_files is refused at its open; room comes back as the gateway takes files. `gateway queue` shows
    what the zone holds."""
    site = sftp_site(inbox_max_bytes=200_000, inbox_max_files=3)
    inbox = site.zone() / "in"
    with site.client() as client, client.open_sftp() as sftp:
        assert _upload(sftp, "/in/.kept.xml.part", 150_000) is None
        refusal = _upload(sftp, "/in/.big.xml.part", 100_000)
        assert refusal is not None and "inbox_max_bytes (200000 bytes" in refusal
        assert sorted(os.listdir(inbox)) == [".kept.xml.part"]  # the refused upload was deleted
        assert _upload(sftp, "/in/.small.xml.part", 1_000) is None
        assert _upload(sftp, "/in/.third.xml.part", 1_000) is None
        with pytest.raises(OSError, match=r"inbox_max_files \(3 files in in/"):
            sftp.open("/in/.fourth.xml.part", "w")
        shown = json.loads(cli(site.config, "queue", "--json"))["zones"]["acme"]["in"]
        assert shown == {"files": 3, "bytes": 152_000, "temporary_files": 3, "temporary_bytes": 152_000}
        sftp.posix_rename("/in/.small.xml.part", "/in/small.xml")  # handed to intake, which takes it from in/
        wait_for(lambda: _upload(sftp, "/in/.fourth.xml.part", 1_000) is None, what="room in in/ again")
    assert "acme" in cli(site.config, "queue")


def test_temporary_uploads_left_untouched_expire(sftp_site):
    """A temporary upload left in in/ for stale_upload_seconds is removed by the zone watcher and logged; one
    touched since is kept."""
    site = sftp_site(stale_upload_seconds=1.0)
    inbox = site.zone() / "in"
    with capture_logs() as logs:
        with site.client() as client, client.open_sftp() as sftp:
            sftp.putfo(io.BytesIO(b"<Invoice"), "/in/.left.xml.part")
            sftp.putfo(io.BytesIO(b"<Invoice"), "/in/.fresh.xml.part")
        later = time.time() + 3600
        os.utime(inbox / ".fresh.xml.part", (later, later))  # as if written an hour from now: never stale here
        wait_for(lambda: not (inbox / ".left.xml.part").exists(), 20, "the stale upload removed")
    assert sorted(os.listdir(inbox)) == [".fresh.xml.part"]
    expired = [e for e in logs if e["event"] == "zone_upload_expired"]
    assert [(e["account"], e["original_name"], e["size"]) for e in expired] == [("acme", ".left.xml.part", 8)]
    assert site.flows() == []
