"""SFTP benchmark: N invoice files of 20 KiB uploaded with OpenSSH's `sftp` client in one batch session.

In the same run, the same files go to the embedded server of a running gateway, then, where
/usr/sbin/sshd exists and we are root, to OpenSSH's sshd (internal-sftp) serving the zone of a
second gateway whose watcher takes them. In both cases the gateway takes and judges the files
while they arrive; the embedded server shares its process (and the GIL) with that work. Prints for
each the upload rate (files/s from the first `put` to the end of the last, the login left out),
drop-to-acknowledgement p50/p99, and the ratio embedded / sshd. A file's drop time is when the
client moved on to the next command (batch mode echoes each command as it starts it).

    python benchmarks/sftp.py [-n 1000] [--size 20480]
"""

from __future__ import annotations

import argparse
import os
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


def show(label: str, result: Result | str) -> None:
    if isinstance(result, str):
        print(f"{label:9} {result}")
        return
    p50, p99 = (percentile(result.to_ack, q) * 1000 for q in (50, 99))
    print(f"{label:9} {result.rate:7.1f} files/s ({result.uploads} in {result.seconds:.2f} s)   "
          f"drop->ack p50 {p50:6.0f} ms  p99 {p99:6.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="number of files (default 1000)")
    parser.add_argument("--size", type=int, default=20 * 1024, help="bytes per file (default 20480)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        staging = base / "staging"
        staging.mkdir()
        names = build_flows(staging, args.n, args.size)
        embedded = run_embedded(base, staging, names)
        sshd = run_sshd(base, staging, names)
    print(f"{args.n} files of {args.size} bytes, one `sftp -b` session each")
    show("embedded", embedded)
    show("sshd", sshd)
    if not isinstance(sshd, str):
        print(f"embedded / sshd: {embedded.rate / sshd.rate:.2f} (target >= 0.50)")


if __name__ == "__main__":
    main()
