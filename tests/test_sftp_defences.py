"""What the server refuses: other channels than SFTP, weak algorithms, slow logins, crowds, guessing."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import paramiko
import pytest
from structlog.testing import capture_logs

from tests.harness import wait_for
from tests.sftp_harness import PASSWORDS, Site, need_openssh_client


def _closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_exec_shell_pty_and_forwards_are_refused(sftp_site):
    """Only the sftp subsystem: exec, shell, pty, other subsystems, direct-tcpip, tcpip-forward all fail."""
    site = sftp_site()
    with site.client() as client:
        transport = client.get_transport()
        for request in (lambda c: c.exec_command("id"), lambda c: c.invoke_shell(), lambda c: c.get_pty(),
                        lambda c: c.invoke_subsystem("netconf")):
            with pytest.raises(paramiko.SSHException):
                request(transport.open_session())
        with pytest.raises(paramiko.ChannelException):
            transport.open_channel("direct-tcpip", ("127.0.0.1", site.port), ("127.0.0.1", 0))
        with pytest.raises(paramiko.SSHException):
            transport.request_port_forward("127.0.0.1", 0)
        assert client.open_sftp().listdir("/") is not None  # the connection is still usable for SFTP


def test_openssh_command_and_forwarding_are_refused(sftp_site, tmp_path):
    need_openssh_client()
    site = sftp_site()
    ssh = ["ssh", "-F", "/dev/null", "-p", str(site.port), "-i", str(site.key), "-o", "IdentitiesOnly=yes",
           "-o", f"UserKnownHostsFile={site.known_hosts}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]
    result = subprocess.run([*ssh, "acme@127.0.0.1", "cat /etc/passwd"], capture_output=True, text=True, timeout=30,
                            stdin=subprocess.DEVNULL)
    assert result.returncode != 0 and "root:" not in result.stdout
    result = subprocess.run([*ssh, "-N", "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:22", "acme@127.0.0.1"],
                            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode != 0 and "forwarding failed" in result.stderr.lower()


@pytest.mark.parametrize("option", ["Ciphers=aes128-cbc", "MACs=hmac-sha1", "KexAlgorithms=diffie-hellman-group14-sha1",
                                    "HostKeyAlgorithms=ssh-rsa"])
def test_weak_algorithms_are_refused(sftp_site, tmp_path, option):
    """An OpenSSH client offering only a weak algorithm cannot negotiate."""
    site = sftp_site()
    batch = tmp_path / "batch.txt"
    batch.write_text("ls /\n")
    result = subprocess.run(site.openssh().argv(batch, "-o", option), capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert "no matching" in result.stderr.lower()


def test_banner_is_neutral(sftp_site):
    """The identification string names no product or version."""
    site = sftp_site()
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as sock:
        assert sock.recv(256).split(b"\r\n")[0] == b"SSH-2.0-gateway"


def test_login_grace_closes_silent_connections(sftp_site):
    """A TCP connection that never authenticates is closed after login_grace."""
    site = sftp_site(login_grace=1.0)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as sock:
        sock.sendall(b"SSH-2.0-slowloris\r\n")
        assert _closed(sock).startswith(b"SSH-2.0-gateway")
    assert 0.9 <= time.monotonic() - started < 8


def test_a_connection_sending_nothing_is_closed_at_login_grace_and_its_address_penalised(sftp_site):
    """Not even a banner: closed at login_grace from its accept (not at paramiko's own 15 s); the address is
    then refused at once for penalty_seconds, another address is not."""
    site = sftp_site(login_grace=1.5, penalty_seconds=60.0)
    started = time.monotonic()
    with _from("127.0.0.2", site.port) as sock:
        assert _closed(sock).startswith(b"SSH-2.0-gateway")
    assert 1.4 <= time.monotonic() - started < 5
    with _from("127.0.0.2", site.port) as sock:
        assert _closed(sock) == b""  # refused before even the identification string
    with _from("127.0.0.3", site.port) as sock:
        assert sock.recv(256).startswith(b"SSH-2.0-gateway")


def _from(source: str, port: int) -> socket.socket:
    """A TCP connection to the server from the loopback address source."""
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def test_login_grace_spares_authenticated_sessions(sftp_site):
    site = sftp_site(login_grace=1.0)
    with site.client() as client, client.open_sftp() as sftp:
        connected = time.monotonic()
        wait_for(lambda: time.monotonic() - connected > 1.5, what="past the grace period")
        assert sorted(sftp.listdir("/")) == ["in", "out"]


def test_idle_connections_are_closed_and_their_open_uploads_dropped(sftp_site):
    """A logged-in client that sends no request for idle_timeout is disconnected and the upload it left open
    deleted, never taken; a client making requests meanwhile keeps its connection."""
    # idleness is watched once the login grace is over; the grace, counted from the accept, leaves two logins on a
    # busy machine the time to finish
    site = sftp_site(idle_timeout=1.0, login_grace=3.0)
    with site.client() as idle, site.client() as busy:
        sftp = busy.open_sftp()
        began = time.monotonic()
        upload = idle.open_sftp().open("/in/left.xml", "w")
        upload.write(b"<Invoice")
        upload.flush()
        assert [e.name for e in os.scandir(site.zone() / "in")] != []

        def idle_closed() -> bool:
            assert sorted(sftp.listdir("/")) == ["in", "out"]
            return not idle.get_transport().is_active()
        wait_for(idle_closed, 15, "the idle connection closed", interval=0.2)
        assert time.monotonic() - began >= 1.0
        assert busy.get_transport().is_active()
    wait_for(lambda: not any(os.scandir(site.zone() / "in")), what="the upload left open deleted")
    assert site.flows() == []


def test_startups_and_sessions_are_capped_apart(sftp_site):
    """Past max_startups_per_ip connections not yet logged in, the server closes new ones from that address at
    once, however many sessions it has; past max_connections_per_ip sessions, a login is refused; a slot freed
    is used again."""
    site = sftp_site(max_startups_per_ip=2, max_connections_per_ip=2, max_connections=5)
    held = [site.client(), site.client()]
    caps = site.gateway.sftp.caps
    wait_for(lambda: caps.counts() == (0, 2), what="both logins counted as sessions")  # by their own threads
    silent = [socket.create_connection(("127.0.0.1", site.port), timeout=10) for _ in range(2)]
    for sock in silent:
        assert sock.recv(256).startswith(b"SSH-2.0-gateway")  # admitted as startups
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as sock:
        assert _closed(sock) == b""  # closed before even the identification string
    for sock in silent:
        sock.close()
    with pytest.raises(paramiko.AuthenticationException):
        wait_for(lambda: _refused_login(site), what="a login refused for the sessions, not the startups")
    held.pop().close()
    wait_for(lambda: _admitted(site), what="a connection admitted again")
    for client in held:
        client.close()


def _refused_login(site) -> bool:
    """False while the connection itself is refused (the startups not yet released); raises a refused login."""
    try:
        site.client().close()
    except paramiko.AuthenticationException:
        raise
    except (paramiko.SSHException, OSError):
        return False
    raise AssertionError("a login past max_connections_per_ip was accepted")


def _admitted(site) -> bool:
    try:
        site.client().close()
        return True
    except (paramiko.SSHException, OSError):
        return False


def test_wrong_passwords_are_slowed_then_locked_for_that_account_only(sftp_site):
    """Each failure of one account from an address waits longer; the ban_after-th locks that account's passwords
    from that address, even the right one; other accounts from the same address, and the account's key, still
    log in."""
    site = sftp_site(auth_delay=0.2, auth_delay_max=0.8, ban_after=3, ban_seconds=60)
    transport = paramiko.Transport(("127.0.0.1", site.port))
    transport.start_client(timeout=10)
    durations = []
    with capture_logs() as logs:
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(paramiko.AuthenticationException):
                transport.auth_password("acme", "guess")
            durations.append(time.monotonic() - started)
        with pytest.raises(paramiko.AuthenticationException):
            transport.auth_password("acme", PASSWORDS["acme"])  # locked: refused however right
    failed = [(e["delay"], e["locked"], e["banned"]) for e in logs if e["event"] == "sftp_auth_failed"]
    assert failed == [(0.2, False, False), (0.4, False, False), (0.8, True, False)]
    assert [e["reason"] for e in logs if e["event"] == "sftp_auth_refused"] == ["locked"]
    # each answer waited at least its delay (more under load: the password hash, a busy machine)
    assert durations[0] >= 0.2 and durations[1] >= 0.4 and durations[2] >= 0.8
    transport.close()
    with pytest.raises(paramiko.AuthenticationException):
        site.client("acme")
    site.client("mairie-exemple").close()
    with site.client("acme", key_filename=str(site.key)) as client:  # the key is not what was guessed
        assert sorted(client.open_sftp().listdir("/")) == ["in", "out"]


def test_failures_for_many_names_ban_the_address(sftp_site):
    """ban_accounts names failing from one address, existing or not, ban it: its connections are closed at
    once, its accounts refused."""
    site = sftp_site(auth_delay=0.0, auth_delay_max=0.0, ban_accounts=3)
    for name in ("nobody", "root", "acme"):
        with pytest.raises(paramiko.AuthenticationException):
            site.client(name, password="guess")
    with pytest.raises((paramiko.SSHException, OSError)):
        site.client("mairie-exemple")
    with socket.create_connection(("127.0.0.1", site.port), timeout=10) as sock:
        assert _closed(sock) == b""


def test_unknown_accounts_fail_like_wrong_passwords(sftp_site):
    """No account, no password, or a wrong one: the same refusal, counted the same way."""
    site = sftp_site(auth_delay=0.0, auth_delay_max=0.0, ban_after=100)
    for account, password in (("nobody", "x"), ("mairie-exemple", PASSWORDS["acme"]), ("acme", "")):
        with pytest.raises(paramiko.AuthenticationException):
            site.client(account, password=password or "-")


def test_port_in_use_fails_at_start_and_stops_cleanly(tmp_path):
    """A port already taken: start() raises, and stopping the half-started gateway does not fail."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        site = Site(tmp_path / "site", {"port": taken.getsockname()[1]})
        with pytest.raises(OSError):
            site.start()
        site.stop()
    assert site.gateway is None
