"""Lifecycle benchmark: status changes dropped by a recipient, status-returns written for the supplier.

Deposits N/5 invoices (in .zip batches) into a running gateway, waits until each is made available, then
the recipient drops N status messages (the gateway's own status XML, one file each): SERVICE_FAIT, MANDATEE,
MISE_A_DISPOSITION_COMPTABLE, COMPTABILISEE, MISE_EN_PAIEMENT for every invoice, one step at a time. Prints
changes/s and p50/p99 of the time from a drop to the supplier's status-return file.

    python benchmarks/lifecycle.py [-n 10000] [--threads 1]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lxml import etree  # noqa: E402

from benchmarks.pipeline import peak_rss_mb, percentile  # noqa: E402
from gateway.lifecycle.statuses import Status  # noqa: E402
from tests.harness import SAMPLES, GatewayProcess, cli, files, inbox, load_samples, outbox, renumber, write_config  # noqa: E402

STEPS = (Status.SERVICE_FAIT, Status.MANDATEE, Status.MISE_A_DISPOSITION_COMPTABLE, Status.COMPTABILISEE,
         Status.MISE_EN_PAIEMENT)
NS = {"s": "urn:gateway:status:1"}
SUPPLIER, RECIPIENT = "acme", "mairie-exemple"


def status_message(invoice_id: str, status: Status) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><statusUpdate xmlns="urn:gateway:status:1">'
            f"<invoiceId>{invoice_id}</invoiceId><statusCode>{status.value}</statusCode>"
            f"{'<mandateNumber>M-1</mandateNumber>' if status is Status.MANDATEE else ''}</statusUpdate>").encode()


_read: dict[str, tuple[tuple[str, str], float] | None] = {}  # file name -> what it says, parsed once


def returns(root: Path) -> dict[tuple[str, str], float]:
    """(invoice id, status code) -> mtime of each status-return the supplier has received."""
    for path in files(outbox(root, SUPPLIER), ".status.xml"):
        if path.name not in _read:
            doc = etree.parse(str(path)).getroot()
            code = doc.findtext("s:statusCode", namespaces=NS)
            _read[path.name] = ((doc.findtext("s:invoiceId", namespaces=NS), code), path.stat().st_mtime) \
                if code else None
    return dict(entry for entry in _read.values() if entry)


def wait(predicate, what: str, timeout: float = 1800) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def deposit(root: Path, invoices: int) -> list[str]:
    """Deposit the invoices in batches of 500; return their ids once all are made available."""
    base = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
    for start in range(0, invoices, 500):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for i in range(start, min(invoices, start + 500)):
                archive.writestr(f"inv-{i:05d}.xml", renumber(base, f"LB-{i:05d}"))
        (inbox(root, SUPPLIER) / f"batch-{start:05d}.zip").write_bytes(buffer.getvalue())
    available = Status.MISE_A_DISPOSITION.value
    wait(lambda: sum(code == available for _, code in returns(root)) >= invoices, "invoices made available")
    return sorted(i for i, code in returns(root) if code == available)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10000, help="status changes (default 10000, a multiple of 5)")
    parser.add_argument("--threads", type=int, default=1, help="worker threads in the gateway")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = write_config(root, {"worker": {"threads": args.threads, "lease_seconds": 30.0}})
        load_samples(config)
        cli(config, "accounts", "add", SUPPLIER, "--update", "--role", "supplier", "--status-format", "gateway")
        gateway = GatewayProcess(config)
        gateway.start()
        try:
            ids = deposit(root, args.n // len(STEPS))
            dropped: dict[tuple[str, str], float] = {}
            start = time.time()
            for step in STEPS:
                for invoice_id in ids:
                    target = inbox(root, RECIPIENT) / f"{invoice_id}-{step.value}.xml"
                    staged = target.with_name("." + target.name)
                    staged.write_bytes(status_message(invoice_id, step))
                    os.rename(staged, target)
                    dropped[(invoice_id, step.value)] = time.time()
                wait(lambda: sum(k in dropped for k in returns(root)) >= len(dropped), f"returns of {step.name}")
            seen = returns(root)
            elapsed = max(seen[k] for k in dropped) - start
            rss = peak_rss_mb(gateway.proc.pid)
        finally:
            gateway.stop()
    latencies = [seen[k] - t for k, t in dropped.items()]
    print(f"status changes            {len(dropped)} on {len(ids)} invoices ({args.threads} worker thread(s))")
    print(f"changes/s                 {len(dropped) / elapsed:.1f}")
    print(f"drop->status-return p50   {percentile(latencies, 50) * 1000:.0f} ms")
    print(f"drop->status-return p99   {percentile(latencies, 99) * 1000:.0f} ms")
    print(f"gateway peak RSS          {rss:.0f} MB")


if __name__ == "__main__":
    main()
