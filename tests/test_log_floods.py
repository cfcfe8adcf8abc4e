"""The logs in a flood: repeated events are logged once, counted, and summed up once a period; the network's
everyday noise (port scans, probes sending no SSH banner) makes one line without a traceback; a folder planted
in an in/ is said when it appears and when it is gone, not at every scan."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from structlog.testing import capture_logs

from gateway.ops.alarm import Repeats
from tests.harness import GatewayProcess, ack_for_name, cli, drop, inbox, wait_for, write_config
from tests.sftp_harness import log_events, sftp_port

FLOOD = 300


def _summaries(events: list[dict], event: str) -> list[dict]:
    return [e for e in events if e.get("event") == f"{event}_repeated"]


def _counted(events: list[dict], event: str) -> int:
    """How many events of that name the log tells of: its own lines and the counts of its summaries."""
    return sum(e.get("event") == event for e in events) + sum(e["count"] for e in _summaries(events, event))


def test_repeated_events_are_logged_once_then_summed_up_once_a_period():
    """300 events of one kind make one line, then one summary with their count and distinct addresses; another
    kind has its own first line; a flood going on makes one summary a period; after a quiet period the next
    event is logged in full again."""
    now = [0.0]
    repeats = Repeats(period=0.5, clock=lambda: now[0])  # its summaries come on time; its periods are read on now

    def refused(ip: str, reason: str = "penalty") -> None:
        repeats.warning("sftp_connection_refused", ("reason",), ip=ip, reason=reason)

    with capture_logs() as logs:
        for n in range(FLOOD):
            refused(f"10.0.{n % 30}.1")
        refused("10.9.9.9", "banned")
        wait_for(lambda: len(_summaries(logs, "sftp_connection_refused")) == 1, 10, "the first summary")
        now[0] = 0.1
        refused("10.0.0.1")  # the flood goes on: counted in the next period
        wait_for(lambda: len(_summaries(logs, "sftp_connection_refused")) == 2, 10, "the second summary")
        now[0] = 1.0
        refused("10.0.0.2")  # a period without any since: a new flood, said in full
    full = [(e["ip"], e["reason"]) for e in logs if e["event"] == "sftp_connection_refused"]
    first, second = _summaries(logs, "sftp_connection_refused")
    assert full == [("10.0.0.1", "penalty"), ("10.9.9.9", "banned"), ("10.0.0.2", "penalty")]
    assert (first["reason"], first["count"], first["addresses"], first["log_level"]) == \
        ("penalty", FLOOD - 1, 30, "warning")
    assert (second["reason"], second["count"], second["addresses"]) == ("penalty", 1, 1)


def test_a_flood_of_refused_connections_makes_a_handful_of_lines(tmp_path):
    """An address penalised for a silent connection, then 300 connections from it, each refused at once: one
    line says the first, one summary a second says the others, with their count."""
    config = write_config(tmp_path, {"sftp": {"enabled": True, "port": 0, "login_grace": 0.5, "penalty_seconds": 600.0},
                                     "log": {"summary_interval": 1.0}})
    gateway = GatewayProcess(config, "--role", "sftp")
    gateway.start()
    try:
        port = wait_for(lambda: sftp_port(gateway.log), 60, "the SFTP server")
        with socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0), timeout=10) as sock:
            while sock.recv(4096):  # silent: closed at login_grace, its address penalised
                pass
        for _ in range(FLOOD):
            with socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0), timeout=10) as sock:
                assert sock.recv(4096) == b""  # refused before the server's banner
        wait_for(lambda: _counted(log_events(gateway.log), "sftp_connection_refused") == FLOOD, 30,
                 "the refusals summed up", interval=0.1)
    finally:
        assert gateway.stop() == 0
    events = log_events(gateway.log)
    refused = [e for e in events if e.get("event", "").startswith("sftp_connection_refused")]
    assert [(e["event"], e["reason"], e["ip"]) for e in refused[:1]] == \
        [("sftp_connection_refused", "penalty", "127.0.0.2")]
    assert 2 <= len(refused) <= 6, refused  # the first, then one summary a second while it lasted
    assert all(e["addresses"] == 1 for e in refused[1:])
    print(f"\n{FLOOD} refused connections: {len(refused)} log lines")


def _probe(port: int, source: str, send: bytes) -> None:
    """A TCP connection from source that sends send, then closes, reading what the server sent meanwhile."""
    with socket.create_connection(("127.0.0.1", port), source_address=(source, 0), timeout=10) as sock:
        if send:
            sock.sendall(send)
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(4096):
            pass


def test_probes_failing_the_handshake_log_one_line_without_traceback(tmp_path):
    """Port scans and probes, each failing the SSH handshake before any login: a connection closed at once,
    another protocol's request, a banner then nothing, an SSH-1 banner, garbage after the banner. Each kind makes
    one info line (then a summary), never paramiko's error lines and traceback."""
    config = write_config(tmp_path, {"sftp": {"enabled": True, "port": 0}, "log": {"summary_interval": 1.0}})
    gateway = GatewayProcess(config, "--role", "sftp")
    gateway.start()
    probes = {"no SSH banner": [b"", b"GET / HTTP/1.0\r\n\r\n"],
              "closed before login": [b"SSH-2.0-probe\r\n"],
              "handshake failed": [b"SSH-1.5-old\r\n", b"SSH-2.0-probe\r\n" + b"\x00\x00\xff\xff" + os.urandom(64)]}
    try:
        port = wait_for(lambda: sftp_port(gateway.log), 60, "the SFTP server")
        for n, sends in enumerate(probes.values()):
            for send in sends:
                for _ in range(5):
                    _probe(port, f"127.0.0.{n + 2}", send)
        total = sum(5 * len(sends) for sends in probes.values())
        wait_for(lambda: _counted(log_events(gateway.log), "sftp_handshake_failed") == total, 30,
                 "every probe logged or counted", interval=0.1)
    finally:
        assert gateway.stop() == 0
    events = log_events(gateway.log)
    failed = [e for e in events if e.get("event") == "sftp_handshake_failed"]
    assert sorted(e["reason"] for e in failed) == sorted(probes)  # the first of each kind
    assert {e["level"] for e in failed} == {"info"} and all(e["error"] for e in failed)
    assert [e for e in events if e.get("level") in ("error", "critical") or "exception" in e] == []
    assert [e for e in events if e.get("logger", "").startswith("paramiko")] == []
    assert "Traceback" not in gateway.log.read_text()


def test_a_folder_planted_in_in_is_said_when_it_appears_and_when_it_is_gone(tmp_path):
    """A folder in an in/ is logged once, however many scans see it, and once when removed; 30 fifos planted
    are removed, the first ten said in full, the others summed up (when the gateway stops, at the latest)."""
    config = write_config(tmp_path, {"ingest": {"scan_interval": 0.1, "watch_events": False}})
    cli(config, "accounts", "add", "acme", "--role", "supplier")
    gateway = GatewayProcess(config, "--role", "ingest,worker")
    gateway.start()
    folder = inbox(tmp_path, "acme") / "planted.xml"
    try:
        wait_for(gateway.started, 60, "the gateway's start")
        folder.mkdir()
        (folder / "inside.xml").write_bytes(b"never taken")
        for n in range(30):
            os.mkfifo(inbox(tmp_path, "acme") / f"fifo-{n}.xml")
        for n in range(3):  # found by a scan each (no file-system events): three scans at least saw the folder
            drop(tmp_path, "acme", f"after-{n}.xml", f"junk {n}".encode())
            wait_for(lambda: ack_for_name(tmp_path, "acme", f"after-{n}.xml"), 30, f"after-{n}.xml taken")
        (folder / "inside.xml").unlink()
        folder.rmdir()
        wait_for(lambda: any(e.get("event") == "zone_entry_gone" for e in log_events(gateway.log)), 30,
                 "the folder said gone", interval=0.05)
    finally:
        assert gateway.stop() == 0
    events = log_events(gateway.log)
    said = [(e["event"], Path(e["path"]).name) for e in events
            if e.get("event") in ("zone_entry_ignored", "zone_entry_gone")]
    assert said == [("zone_entry_ignored", "planted.xml"), ("zone_entry_gone", "planted.xml")]
    assert sum(e.get("event") == "zone_entry_removed" for e in events) == 10
    assert [e["count"] for e in _summaries(events, "zone_entry_removed")] == [20]
    assert not any(p.name.startswith("fifo-") for p in inbox(tmp_path, "acme").iterdir())
