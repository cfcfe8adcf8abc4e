"""Pipeline benchmark: N single-invoice flows dropped into a running gateway.

Prints flows/s, drop-to-acknowledgement and drop-to-report p50/p99, the gateway's peak RSS, and, in the
same run, the raw rate of check_document (parse + XSD + extraction, schemas loaded once, tight loop) on the
same files, with the ratio of the two. Flows are built from ../shared/corpus (each copy made unique by a
trailing comment), or from samples/flows when the corpus is absent.

    python benchmarks/pipeline.py [-n 2000] [--threads 1] [--rate 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lxml import etree  # noqa: E402

from benchmarks.common import peak_rss_mb, percentile  # noqa: E402
from gateway.validate import check_document  # noqa: E402
from tests.harness import ACK_NS, CORPUS, SAMPLES, GatewayProcess, files, inbox, load_samples, outbox, write_config  # noqa: E402

SUPPLIER = "acme"


def sources() -> list[bytes]:
    folder = CORPUS if CORPUS.is_dir() else SAMPLES / "flows"
    return [p.read_bytes() for p in sorted(folder.glob("*.xml"))]


def build_flows(n: int) -> list[bytes]:
    base = sources()
    return [base[i % len(base)] + f"\n<!-- benchmark flow {i} -->\n".encode() for i in range(n)]


def raw_rate(flows: list[bytes]) -> float:
    check_document(flows[0])  # load the schemas outside the timing
    start = time.perf_counter()
    for content in flows:
        check_document(content)
    return len(flows) / (time.perf_counter() - start)


def run_pipeline(root: Path, flows: list[bytes], threads: int, rate: float) -> dict:
    config = write_config(root, {"worker": {"threads": threads, "lease_seconds": 30.0}})
    load_samples(config)
    staging = root / "staging"
    staging.mkdir()
    names = [f"bench-{i:05d}.xml" for i in range(len(flows))]
    for name, content in zip(names, flows, strict=True):
        (staging / name).write_bytes(content)
    gateway = GatewayProcess(config)
    gateway.start()
    time.sleep(1.0)  # let the process start before timing; not a synchronisation
    dropped: dict[str, float] = {}
    start = time.time()
    for i, name in enumerate(names):
        if rate:
            time.sleep(max(0.0, start + i / rate - time.time()))
        os.rename(staging / name, inbox(root, SUPPLIER) / name)
        dropped[name] = time.time()
    out = outbox(root, SUPPLIER)
    deadline = time.time() + 600
    while len(files(out, ".report.xml")) < len(flows) and time.time() < deadline:
        time.sleep(0.2)
    elapsed = max(p.stat().st_mtime for p in files(out, ".report.xml")) - start
    rss = peak_rss_mb(gateway.proc.pid)
    gateway.stop()
    to_ack, to_report = [], []
    for ack in files(out, ".ack.xml"):
        doc = etree.parse(str(ack)).getroot()
        name = doc.findtext("a:originalName", namespaces=ACK_NS)
        report = out / ack.name.replace(".ack.xml", ".report.xml")
        to_ack.append(ack.stat().st_mtime - dropped[name])
        to_report.append(report.stat().st_mtime - dropped[name])
    return {"flows": len(to_report), "elapsed": elapsed, "rss": rss, "ack": to_ack, "report": to_report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="number of flows (default 2000)")
    parser.add_argument("--threads", type=int, default=1, help="worker threads in the gateway")
    parser.add_argument("--rate", type=float, default=0.0, help="drop rate in flows/s (0: all at once)")
    args = parser.parse_args()
    flows = build_flows(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_pipeline(Path(tmp), flows, args.threads, args.rate)
    raw = raw_rate(flows)
    rate = result["flows"] / result["elapsed"]
    print(f"flows                     {result['flows']} (source: {'corpus' if CORPUS.is_dir() else 'samples'})")
    print(f"pipeline                  {rate:.1f} flows/s ({args.threads} worker thread(s))")
    for label, key in (("drop->ack   ", "ack"), ("drop->report", "report")):
        p50, p99 = (percentile(result[key], q) * 1000 for q in (50, 99))
        print(f"{label}   p50 / p99  {p50:.0f} / {p99:.0f} ms")
    print(f"gateway peak RSS          {result['rss']:.0f} MB")
    print(f"raw check_document        {raw:.1f} documents/s (parse + XSD + extraction, one thread)")
    print(f"pipeline / raw            {rate / raw:.2f}")


if __name__ == "__main__":
    main()
