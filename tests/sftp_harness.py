"""Helpers for the SFTP tests and benchmark: keys, the OpenSSH client in batch mode, an unprivileged sshd."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

SSHD = Path("/usr/sbin/sshd")
SFTP = shutil.which("sftp")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def password_sftp(port: int, account: str, password: str) -> Iterator[paramiko.SFTPClient]:
    """paramiko's SFTP client on 127.0.0.1:port as account, logged in with password, any host key taken."""
    with paramiko.SSHClient() as client:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a fresh test server: nothing to pin yet
        client.connect("127.0.0.1", port, username=account, password=password, look_for_keys=False,
                       allow_agent=False, timeout=10)
        yield client.open_sftp()


def make_key(path: Path) -> Path:
    """An Ed25519 key pair without passphrase, in OpenSSH's formats: path, and its public key as path.pub."""
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
    path.chmod(0o600)
    line = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH) + f" {path.name}\n".encode()
    public(path).write_bytes(line)
    return path


def need_openssh_client() -> None:
    if SFTP is None:
        pytest.skip("OpenSSH's client is not installed (apt-get install openssh-client)")


def public(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def known_hosts(path: Path, port: int, key: paramiko.PKey | str) -> Path:
    """A known_hosts file pinning 127.0.0.1:port to key (a PKey, or an OpenSSH public key line)."""
    line = key if isinstance(key, str) else f"{key.get_name()} {key.get_base64()}"
    path.write_text(f"[127.0.0.1]:{port} {' '.join(line.split()[:2])}\n")
    return path


@dataclass
class OpenSSH:
    """The stock `sftp` client against 127.0.0.1:port, host key pinned, no user configuration read."""

    port: int
    user: str
    known_hosts: Path
    key: Path | None = None
    password: str | None = None

    def argv(self, batch: Path | str, *extra: str) -> list[str]:
        need_openssh_client()
        argv = [SFTP, "-F", "/dev/null", "-P", str(self.port),
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=10"]
        if self.key is not None:
            argv += ["-i", str(self.key), "-o", "PasswordAuthentication=no"]
        else:  # -b adds BatchMode=yes, which forbids passwords; an earlier -o wins, and SSH_ASKPASS answers
            argv += ["-o", "BatchMode=no", "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1"]
        return [*argv, "-b", str(batch), *extra, f"{self.user}@127.0.0.1"]

    def env(self, workdir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SSH_")}
        if self.password is not None:
            askpass = workdir / "askpass.sh"
            askpass.write_text("#!/bin/sh\nprintf '%s\\n' \"$GATEWAY_TEST_PASSWORD\"\n")
            askpass.chmod(0o700)
            env.update(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY="none",
                       GATEWAY_TEST_PASSWORD=self.password)
        return env

    def run(self, workdir: Path, commands: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        """Run commands in one session; `-` before a command lets the batch go on if it fails."""
        batch = workdir / "batch.txt"
        batch.write_text("\n".join(commands) + "\n")
        return subprocess.run(self.argv(batch), capture_output=True, text=True, timeout=timeout,
                              env=self.env(workdir), stdin=subprocess.DEVNULL, cwd=workdir)

    def start(self, workdir: Path, commands: list[str]) -> subprocess.Popen:
        batch = workdir / "batch.txt"
        batch.write_text("\n".join(commands) + "\n")
        return subprocess.Popen(self.argv(batch), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env(workdir), stdin=subprocess.DEVNULL, cwd=workdir)


class Sshd:
    """OpenSSH's sshd on 127.0.0.1:port, serving one directory with internal-sftp to one key.

    No chroot (that needs root-owned parents all the way up, which temporary folders are not):
    `internal-sftp -d` only starts the session in the folder, which is enough for the watcher path.
    """

    def __init__(self, workdir: Path, folder: Path, client_key: Path) -> None:
        self.workdir, self.folder = workdir, folder
        self.port = free_port()
        self.host_key = workdir / "sshd_host_key"
        make_key(self.host_key)
        self.config = workdir / "sshd_config"
        self.config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
            f"PidFile {workdir / 'sshd.pid'}", f"AuthorizedKeysFile {public(client_key)}",
            "StrictModes no", "UsePAM no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", "AllowTcpForwarding no", "X11Forwarding no", "PermitTTY no",
            "Subsystem sftp internal-sftp", f"ForceCommand internal-sftp -d {folder}", "LogLevel ERROR", ""]))
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation directory, root only
        with open(self.workdir / "sshd.log", "ab") as log:  # sshd keeps its own descriptor
            self.proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(self.config)], stderr=log)

    def host_public_key(self) -> str:
        return public(self.host_key).read_text()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def log_events(path: Path) -> list[dict]:
    """The JSON events of a `gateway run` log file; threads logging at once may have run two lines into one."""
    decoder, events = json.JSONDecoder(), []
    for line in path.read_text(errors="replace").splitlines():
        at = line.find("{")
        while at != -1:
            try:
                event, end = decoder.raw_decode(line, at)
            except ValueError:
                at = line.find("{", at + 1)
                continue
            events.append(event)
            at = line.find("{", end)
    return events


def sftp_port(log: Path, started: int = 0) -> int | None:
    """The port of the started-th SFTP server (0: the first) a `gateway run` log file tells of, once it has."""
    ports = [event["port"] for event in log_events(log) if event.get("event") == "sftp_started"]
    return ports[started] if len(ports) > started else None


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


PASSWORDS = {"acme": "acme-secret-1", "mairie-exemple": "mairie-secret-2"}
QUICK = {"auth_delay": 0.05, "auth_delay_max": 0.2, "login_grace": 20.0}


class Site:
    """A gateway running in this process with its SFTP server on a free port, and clients for it.

    acme logs in with a key or a password, mairie-exemple with a password. ingest: [ingest] settings.
    """

    def __init__(self, root: Path, sftp: dict, ingest: dict | None = None) -> None:
        from tests.harness import cli, load_samples, write_config

        root.mkdir()
        self.root = root
        self.config = write_config(root, {"sftp": {"enabled": True, "port": 0, "own_process": False, **QUICK, **sftp},
                                          "ingest": ingest or {}})
        load_samples(self.config)
        self.key = make_key(root / "acme_key")
        cli(self.config, "accounts", "add", "acme", "--update", "--role", "supplier", "--password", PASSWORDS["acme"],
            "--key", str(public(self.key)))
        cli(self.config, "accounts", "add", "mairie-exemple", "--update", "--role", "recipient",
            "--password", PASSWORDS["mairie-exemple"])
        self.gateway = None

    def start(self) -> Site:
        from gateway import config as config_module
        from gateway.app import App
        from gateway.engine.runner import Gateway
        from gateway.ops.log import configure_logging

        configure_logging("debug", None)
        self.app = App.from_settings(config_module.load(self.config))
        self.gateway = Gateway(self.app)
        self.gateway.start()
        self.port = self.gateway.sftp.address[1]
        self.host_key = self.gateway.sftp.host_key
        self.known_hosts = known_hosts(self.root / "known_hosts", self.port, self.host_key)
        return self

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None

    def openssh(self, account: str = "acme", password: str | None = None) -> OpenSSH:
        """The OpenSSH client as account: with acme's key, or with password if one is given."""
        key = self.key if password is None else None
        return OpenSSH(self.port, account, self.known_hosts, key=key, password=password)

    def client(self, account: str = "acme", password: str | None = None, **kwargs) -> paramiko.SSHClient:
        """paramiko's client, logged in as account with its password (or the given one), host key pinned."""
        client = paramiko.SSHClient()
        client.get_host_keys().add(f"[127.0.0.1]:{self.port}", self.host_key.get_name(), self.host_key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect("127.0.0.1", self.port, username=account, password=password or PASSWORDS[account],
                           look_for_keys=False, allow_agent=False, timeout=10, **kwargs)
        except BaseException:  # a refused login would hold its connection (a startup) until the login grace
            client.close()
            raise
        return client

    def flows(self) -> list:
        from sqlmodel import select

        from gateway.data.db import session_scope
        from gateway.data.models import Flow

        with session_scope(self.app.engine) as session:
            return list(session.exec(select(Flow).order_by(Flow.received_at)).all())

    def zone(self, account: str = "acme") -> Path:
        return self.root / "var" / "zones" / account


@pytest.fixture
def sftp_site(tmp_path: Path):
    """start(ingest=None, **sftp_settings) -> a started Site; every site is stopped at the end of the test."""
    sites: list[Site] = []

    def start(ingest: dict | None = None, **sftp: object) -> Site:
        sites.append(Site(tmp_path / f"site{len(sites)}", sftp, ingest))
        return sites[-1].start()

    yield start
    for site in sites:
        site.stop()
