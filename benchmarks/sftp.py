"""SFTP benchmark: N invoice files of 20 KiB uploaded with OpenSSH's `sftp` client in one batch session.

In the same run, the same files go to the embedded server of a running gateway, then, where
/usr/sbin/sshd exists and we are root, to OpenSSH's sshd (internal-sftp) serving the zone of a
second gateway whose watcher takes them. In both cases the gateway takes and judges the files
while they arrive; the embedded server shares its process (and the GIL) with that work. Prints for
each the upload rate (files/s from the first `put` to the end of the last, the login left out),
drop-to-acknowledgement p50/p99, and the ratio embedded / sshd. A file's drop time is when the
client moved on to the next command (batch mode echoes each command as it starts it).

With --bare, the same files also go to a bare paramiko SFTP server in a process of its own that
only writes them into a folder (no gateway behind it): paramiko's own cost, as a yardstick.

    python benchmarks/sftp.py [-n 1000] [--size 20480] [--bare]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import posixpath
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import paramiko  # noqa: E402
from lxml import etree  # noqa: E402

from benchmarks.common import percentile, upload  # noqa: E402
from tests.harness import (  # noqa: E402
    ACK_NS,
    SAMPLES,
    GatewayProcess,
    cli,
    files,
    inbox,
    load_samples,
    outbox,
    renumber,
    wait_for,
    write_config,
)
from tests.sftp_harness import SSHD, OpenSSH, Sshd, current_user, free_port, known_hosts, listening, make_key, public  # noqa: E402

SUPPLIER = "acme"


@dataclass
class Result:
    uploads: int
    seconds: float
    to_ack: list[float]

    @property
    def rate(self) -> float:
        return self.uploads / self.seconds


def build_flows(staging: Path, n: int, size: int) -> list[str]:
    """n distinct invoices (own number), each padded to size bytes with a trailing comment."""
    base = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
    names = []
    for i in range(n):
        content = renumber(base, f"BENCH-{i:05d}") + b"\n<!-- "
        content += b"x" * (size - len(content) - 5) + b" -->\n"
        names.append(f"bench-{i:05d}.xml")
        (staging / names[-1]).write_bytes(content)
    return names


def upload_all(client: OpenSSH, workdir: Path, staging: Path, names: list[str], remote: str) -> tuple[float, dict]:
    """One batch session putting every file; returns its duration and each file's drop time (its put done)."""
    uploads = upload(client, workdir, [staging / name for name in names], remote)
    seconds = max(u.end for u in uploads.values()) - min(u.start for u in uploads.values())
    return seconds, {name: u.end for name, u in uploads.items()}


def ack_latencies(root: Path, drops: dict[str, float]) -> list[float]:
    out = outbox(root, SUPPLIER)
    wait_for(lambda: len(files(out, ".ack.xml")) >= len(drops), timeout=600, what="every acknowledgement")
    latencies = []
    for ack in files(out, ".ack.xml"):
        name = etree.parse(str(ack)).getroot().findtext("a:originalName", namespaces=ACK_NS)
        latencies.append(ack.stat().st_mtime - drops[name])
    return latencies


def gateway_root(base: Path, sftp: dict) -> tuple[Path, Path]:
    root = base / ("embedded" if sftp.get("enabled") else "sshd")
    root.mkdir()
    config = write_config(root, {"sftp": sftp, "worker": {"lease_seconds": 30.0}})
    load_samples(config)
    return root, config


def run_embedded(base: Path, staging: Path, names: list[str]) -> Result:
    port = free_port()
    root, config = gateway_root(base, {"enabled": True, "port": port})
    key = make_key(base / "client_key")
    cli(config, "accounts", "add", SUPPLIER, "--update", "--role", "supplier", "--key", str(public(key)))
    gateway = GatewayProcess(config)
    gateway.start()
    try:
        wait_for(lambda: listening(port), what="the embedded SFTP server")
        host_key = paramiko.Ed25519Key(filename=str(root / "var" / "sftp_host_ed25519_key"))
        client = OpenSSH(port, SUPPLIER, known_hosts(base / "kh-embedded", port, host_key), key=key)
        seconds, drops = upload_all(client, base, staging, names, "/in/")
        return Result(len(names), seconds, ack_latencies(root, drops))
    finally:
        gateway.stop()


def run_sshd(base: Path, staging: Path, names: list[str]) -> Result | str:
    if not SSHD.exists() or os.geteuid() != 0:
        return "skipped: needs /usr/sbin/sshd (apt-get install openssh-server) and root"
    root, config = gateway_root(base, {"enabled": False})
    key = base / "client_key"
    sshd = Sshd(base, inbox(root, SUPPLIER), key)
    gateway = GatewayProcess(config)
    sshd.start()
    gateway.start()
    try:
        wait_for(lambda: listening(sshd.port), what="sshd")
        client = OpenSSH(sshd.port, current_user(), known_hosts(base / "kh-sshd", sshd.port, sshd.host_public_key()),
                         key=key)
        seconds, drops = upload_all(client, base, staging, names, ".")
        return Result(len(names), seconds, ack_latencies(root, drops))
    finally:
        gateway.stop()
        sshd.stop()


class BareHandle(paramiko.SFTPHandle):
    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def write(self, offset: int, data: bytes) -> int:
        os.pwrite(self.fd, data, offset)
        return paramiko.SFTP_OK

    def stat(self) -> paramiko.SFTPAttributes:
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.fd))

    def close(self) -> None:
        os.close(self.fd)


class BareSftp(paramiko.SFTPServerInterface):
    """One flat folder seen as /: files are only created and written; the folder is the only thing to stat."""

    def __init__(self, server: paramiko.ServerInterface, folder: str) -> None:
        super().__init__(server)
        self.folder = folder

    def canonicalize(self, path: str) -> str:
        return posixpath.normpath(posixpath.join("/", path))

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        if self.canonicalize(path) == "/":  # `put` asks whether its target is a folder
            return paramiko.SFTPAttributes.from_stat(os.stat(self.folder))
        return paramiko.SFTP_NO_SUCH_FILE

    lstat = stat

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> BareHandle | int:
        try:
            name = os.path.join(self.folder, posixpath.basename(self.canonicalize(path)))
            return BareHandle(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno)


class BareAuth(paramiko.ServerInterface):
    def __init__(self, client_key: str) -> None:
        self.client_key = client_key  # base64 of the one public key let in

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL if key.get_base64() == self.client_key else paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        ok = kind == "session"
        return paramiko.OPEN_SUCCEEDED if ok else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


def serve_bare(port: int, folder: str, host_key: str, client_key: str,
               ready: multiprocessing.synchronize.Event) -> None:
    """The bare server's process: every connection its own paramiko transport, TCP_NODELAY set."""
    host = paramiko.Ed25519Key(filename=host_key)
    with socket.create_server(("127.0.0.1", port)) as listener:
        ready.set()
        while True:
            conn, _ = listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            transport = paramiko.Transport(conn)
            transport.add_server_key(host)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, BareSftp, folder)
            transport.start_server(server=BareAuth(client_key))


def run_bare(base: Path, staging: Path, names: list[str]) -> Result:
    folder, key, host_key = base / "bare", base / "client_key", make_key(base / "bare_host_key")
    folder.mkdir()
    port, context = free_port(), multiprocessing.get_context("spawn")  # spawn: a fresh interpreter, its own GIL
    ready = context.Event()
    server = context.Process(target=serve_bare, daemon=True,
                             args=(port, str(folder), str(host_key), public(key).read_text().split()[1], ready))
    server.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the bare SFTP server did not start")
        client = OpenSSH(port, SUPPLIER, known_hosts(base / "kh-bare", port, public(host_key).read_text()), key=key)
        seconds, _ = upload_all(client, base, staging, names, "/")
        if len(os.listdir(folder)) != len(names):
            raise RuntimeError(f"the bare server holds {len(os.listdir(folder))} of {len(names)} files")
        return Result(len(names), seconds, [])
    finally:
        server.terminate()
        server.join()


def show(label: str, result: Result | str) -> None:
    if isinstance(result, str):
        print(f"{label:9} {result}")
        return
    line = f"{label:9} {result.rate:7.1f} files/s ({result.uploads} in {result.seconds:.2f} s)"
    if result.to_ack:  # the bare server has no gateway behind it
        p50, p99 = (percentile(result.to_ack, q) * 1000 for q in (50, 99))
        line += f"   drop->ack p50 {p50:6.0f} ms  p99 {p99:6.0f} ms"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="number of files (default 1000)")
    parser.add_argument("--size", type=int, default=20 * 1024, help="bytes per file (default 20480)")
    parser.add_argument("--bare", action="store_true", help="also time a bare paramiko SFTP server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        staging = base / "staging"
        staging.mkdir()
        names = build_flows(staging, args.n, args.size)
        embedded = run_embedded(base, staging, names)
        sshd = run_sshd(base, staging, names)
        bare = run_bare(base, staging, names) if args.bare else None
    print(f"{args.n} files of {args.size} bytes, one `sftp -b` session each")
    show("embedded", embedded)
    show("sshd", sshd)
    if not isinstance(sshd, str):
        print(f"embedded / sshd: {embedded.rate / sshd.rate:.2f} (target >= 0.50)")
    if bare is not None:
        show("bare", bare)
        print(f"embedded / bare: {embedded.rate / bare.rate:.2f}")
        if not isinstance(sshd, str):
            print(f"bare / sshd: {bare.rate / sshd.rate:.2f}")


if __name__ == "__main__":
    main()
