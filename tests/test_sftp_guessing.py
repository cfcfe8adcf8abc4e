"""Password guessing over SFTP: parallel connections guessing one account take turns (the delays apply per
address and account, whatever the connection), the account's lock spares the other accounts behind the same
address, and the failures are remembered across a restart of the gateway."""

from __future__ import annotations

import threading
from pathlib import Path

import paramiko
import pytest
from structlog.testing import capture_logs

from tests.harness import GatewayProcess, cli, wait_for, write_config
from tests.sftp_harness import PASSWORDS, log_events, make_key, public, sftp_port

WINDOW = 4.0  # seconds of guessing counted
CONNECTIONS = 8


def test_parallel_connections_guessing_one_account_take_turns(sftp_site):
    """8 connections guessing acme's password at once for 4 s: the guesses are checked in turn, 0.5 s after the
    first failure, then 1 s, 2 s...: 4 in the window, where each connection's own delays would have let through
    dozens. Meanwhile another account logs in from the same address."""
    site = sftp_site(auth_delay=0.5, auth_delay_max=8.0, ban_after=100, max_startups_per_ip=CONNECTIONS + 2,
                     login_grace=60.0)
    transports = []
    for _ in range(CONNECTIONS):
        transport = paramiko.Transport(("127.0.0.1", site.port))
        transport.start_client(timeout=10)
        transports.append(transport)

    def guess(transport: paramiko.Transport, n: int) -> None:
        while transport.is_active():
            try:
                transport.auth_password("acme", f"guess-{n}")
            except paramiko.AuthenticationException:
                continue
            except (paramiko.SSHException, EOFError, OSError):
                return

    window = threading.Event()
    with capture_logs() as logs:
        threads = [threading.Thread(target=guess, args=(t, n), daemon=True) for n, t in enumerate(transports)]
        for thread in threads:
            thread.start()
        window.wait(WINDOW)  # the length of the measure, not a synchronisation
        checked = [e for e in logs if e["event"] == "sftp_auth_failed" and e["account"] == "acme"]
        with site.client("mairie-exemple") as other, other.open_sftp() as sftp:
            assert sorted(sftp.listdir("/")) == ["in", "out"]
        for transport in transports:
            transport.close()
        for thread in threads:
            thread.join(timeout=30)
    assert 2 <= len(checked) <= 4, [e["delay"] for e in checked]
    assert [e["delay"] for e in checked] == [0.5, 1.0, 2.0, 4.0][:len(checked)]


def _client(root: Path, port: int, account: str, **credentials) -> paramiko.SSHClient:
    host_key = paramiko.Ed25519Key.from_private_key_file(str(root / "var" / "sftp_host_ed25519_key"))
    client = paramiko.SSHClient()
    client.get_host_keys().add(f"[127.0.0.1]:{port}", host_key.get_name(), host_key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect("127.0.0.1", port, username=account, look_for_keys=False, allow_agent=False, timeout=10,
                       **credentials)
    except BaseException:  # a refused login would hold its connection (a startup) until the login grace
        client.close()
        raise
    return client


def test_the_failure_memory_survives_a_restart(tmp_path):
    """acme's passwords locked from an address by repeated failures stay locked after the gateway restarts (the
    failures are in the database); another account, and acme's key, still log in from that address."""
    config = write_config(tmp_path, {"sftp": {"enabled": True, "port": 0, "auth_delay": 0.05, "auth_delay_max": 0.1,
                                              "ban_after": 3, "ban_seconds": 600.0}})
    key = make_key(tmp_path / "acme_key")
    cli(config, "accounts", "add", "acme", "--role", "supplier", "--password", PASSWORDS["acme"],
        "--key", str(public(key)))
    cli(config, "accounts", "add", "mairie-exemple", "--role", "recipient",
        "--password", PASSWORDS["mairie-exemple"])
    for run in range(2):
        gateway = GatewayProcess(config)
        gateway.start()
        try:
            port = wait_for(lambda: sftp_port(tmp_path / "gateway.log", run), 60, "the SFTP server")
            if run == 0:
                for _ in range(3):
                    with pytest.raises(paramiko.AuthenticationException):
                        _client(tmp_path, port, "acme", password="guess")
            with pytest.raises(paramiko.AuthenticationException):
                _client(tmp_path, port, "acme", password=PASSWORDS["acme"])
            _client(tmp_path, port, "mairie-exemple", password=PASSWORDS["mairie-exemple"]).close()
            _client(tmp_path, port, "acme", key_filename=str(key)).close()
        finally:
            assert gateway.stop() == 0
    refusals = [(line["account"], line["reason"]) for line in log_events(tmp_path / "gateway.log")
                if line.get("event") == "sftp_auth_refused"]
    assert refusals == [("acme", "locked"), ("acme", "locked")]  # once before the restart, once after
