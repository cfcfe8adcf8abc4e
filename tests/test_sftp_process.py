"""The SFTP server in a process of its own (gateway.ingest.sftp.process): started again if it dies, gone with the
gateway that started it, and no finished upload lost either way."""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path

import pytest

from gateway.data.models import Flow
from tests.harness import (
    SAMPLES,
    GatewayProcess,
    ack_for_name,
    cli,
    inbox,
    load_samples,
    renumber,
    rows,
    wait_for,
    write_config,
)
from tests.sftp_harness import free_port, password_sftp

pytestmark = pytest.mark.slow  # gateway processes, killed and started again

SUPPLIER, PASSWORD = "acme", "acme-process-1"
GOOD = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()


def _config(root: Path, database_url: str | None, port: int = 0) -> Path:
    config = write_config(root, {"sftp": {"enabled": True, "port": port, "auth_delay": 0.05},
                                 "validate": {"processes": 1}}, database_url)
    load_samples(config)
    cli(config, "accounts", "add", SUPPLIER, "--update", "--role", "supplier", "--password", PASSWORD)
    return config


def _events(log: Path, kind: str) -> list[dict]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")] if log.exists() else []
    return [line for line in lines if line["event"] == kind]


def _started(log: Path, count: int) -> list[int]:
    """The pids of the SFTP processes the gateway logging to log has started, once there are count of them."""
    return wait_for(lambda: [e["pid"] for e in _events(log, "sftp_process_started")][:count] if
                    len(_events(log, "sftp_process_started")) >= count else None, 120, f"SFTP process {count}")


def _port(log: Path) -> int:
    return wait_for(lambda: next((e["port"] for e in _events(log, "sftp_started")), None), 120, "the SFTP server")


def _gone(pid: int) -> bool:
    """Whether pid has ended (a zombie not yet reaped has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _acknowledged(root: Path, name: str) -> None:
    wait_for(lambda: ack_for_name(root, SUPPLIER, name), 120, f"the acknowledgement of {name}")


def test_a_dead_sftp_process_is_started_again_on_the_same_port(tmp_path, database_url):
    """SIGKILL to the SFTP process: the gateway logs it, starts another on the same socket, uploads are taken again;
    SIGTERM to the gateway then ends it with the gateway."""
    config = _config(tmp_path, database_url)
    gateway = GatewayProcess(config)
    gateway.start()
    try:
        first, = _started(gateway.log, 1)
        port = _port(gateway.log)
        with password_sftp(port, SUPPLIER, PASSWORD) as sftp:
            sftp.putfo(io.BytesIO(renumber(GOOD, "PROC-1")), "/in/before.xml")
        _acknowledged(tmp_path, "before.xml")

        os.kill(first, signal.SIGKILL)
        _, second = _started(gateway.log, 2)
        assert second != first and _gone(first)
        died, = _events(gateway.log, "sftp_process_died")
        assert (died["pid"], died["exit_code"]) == (first, -signal.SIGKILL)
        with password_sftp(port, SUPPLIER, PASSWORD) as sftp:
            sftp.putfo(io.BytesIO(renumber(GOOD, "PROC-2")), "/in/after.xml")
        _acknowledged(tmp_path, "after.xml")
    finally:
        code = gateway.stop()
    assert code == 0 and _gone(second)
    assert sorted(f.original_name for f in rows(config, Flow)) == ["after.xml", "before.xml"]
    assert sorted(f.channel for f in rows(config, Flow)) == ["sftp", "sftp"]


def test_the_sftp_process_ends_with_a_killed_gateway_and_its_uploads_are_taken_after(tmp_path, database_url):
    """SIGKILL to the gateway: its SFTP process ends too, deleting the upload it was writing (the port is free for
    the next start), and every finished upload is acknowledged once, by the next start if not before."""
    port = free_port()
    config = _config(tmp_path, database_url, port)
    gateway = GatewayProcess(config)
    gateway.start()
    names = [f"burst-{n}.xml" for n in range(20)]
    try:
        child, = _started(gateway.log, 1)
        with password_sftp(_port(gateway.log), SUPPLIER, PASSWORD) as sftp:
            for n, name in enumerate(names):
                sftp.putfo(io.BytesIO(renumber(GOOD, f"BURST-{n}")), f"/in/{name}")
            cut = sftp.open("/in/cut.xml", "w")
            cut.write(GOOD[:1000])
            cut.flush()
            wait_for(lambda: any(p.name.startswith(".sftp-upload-") for p in inbox(tmp_path, SUPPLIER).iterdir()),
                     what="the partial upload on disk")
            gateway.kill()  # some of the burst may be named in in/ but not yet taken
            wait_for(lambda: _gone(child), 30, "the SFTP process's end")
    finally:
        gateway.kill() if gateway.proc.poll() is None else None

    again = GatewayProcess(config, log=tmp_path / "again.log")
    again.start()
    try:
        assert _port(again.log) == port
        for name in names:
            _acknowledged(tmp_path, name)
        assert [(e["original_name"], e["reason"]) for e in _events(gateway.log, "sftp_upload_discarded")] == \
            [("cut.xml", "connection lost before the file was closed")]
    finally:
        assert again.stop() == 0
    assert sorted(f.original_name for f in rows(config, Flow)) == sorted(names)
    assert list(inbox(tmp_path, SUPPLIER).iterdir()) == []
