"""Memory of the largest flows the defaults take: a batch of [ingest] max_flow_bytes (1 GiB: ten members of
nearly max_file_bytes, 100 MiB, stored), judged as the pipeline judges it (each member read, kept in the content
store, admissibility and XSD; the business rules, in validator processes of their own, left out); and a zip of
some hundred MB holding only empty entries, whose central directory zipfile would read whole, refused from
its end record. Each runs in a process of its own, whose peak RSS is printed against the target: a flow is
never read whole, so the peak stays under TARGET_MB however large the flow.

    python benchmarks/flow_memory.py [--members 10] [--crowd 1200000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import peak_rss_mb  # noqa: E402
from gateway.config import defaults  # noqa: E402
from gateway.data.store import ContentStore  # noqa: E402
from gateway.judge.document import file_refusal, judge_member, limits_of  # noqa: E402
from gateway.validate.archive import ArchiveRefused  # noqa: E402
from gateway.validate.contents import members  # noqa: E402

TARGET_MB = 400  # under half the flow: its members one at a time, never the flow whole


def _batch(path: Path, count: int, member_bytes: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for i in range(count):
            with archive.open(f"m{i}.xml", "w", force_zip64=True) as member:
                left = member_bytes
                while left:
                    chunk = os.urandom(min(left, 8 << 20))  # random: no ratio to take it for a bomb
                    member.write(chunk)
                    left -= len(chunk)


def _crowd(path: Path, count: int) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(count):
            archive.writestr(f"{i}", b"")


def _judge(path: Path, folder: Path) -> dict:
    """Judge path as the pipeline does, in this process: what came of it, in how long, at what peak RSS."""
    settings = defaults(folder).ingest
    limits, archive_limits = limits_of(settings)
    store = ContentStore(folder / "store")
    start, judged = time.monotonic(), 0
    refusal = file_refusal(path.name, path.stat().st_size, settings)
    try:
        for member in ([] if refusal else members(path, path.name, archive_limits)):
            store.put(member.content)
            judge_member(member, limits, None)
            judged += 1
    except ArchiveRefused as refused:
        refusal = refused.finding
    outcome = f"refused {refusal.rule}: {refusal.message}" if refusal else f"{judged} members judged"
    return {"outcome": outcome, "seconds": time.monotonic() - start, "peak_rss_mb": peak_rss_mb(os.getpid())}


def _measure(path: Path, folder: Path) -> dict:
    found = subprocess.run([sys.executable, __file__, "--judge", str(path), "--folder", str(folder)],
                           capture_output=True, text=True, check=True)
    return json.loads(found.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--crowd", type=int, default=1_200_000, help="empty entries of the crowded zip")
    parser.add_argument("--judge", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.judge:
        print(json.dumps(_judge(args.judge, args.folder)))
        return
    settings = defaults(REPO).ingest
    with TemporaryDirectory() as tmp:
        folder = Path(tmp)
        batch, crowd = folder / "batch.zip", folder / "crowd.zip"
        _batch(batch, args.members, settings.max_file_bytes - 4096)
        _crowd(crowd, args.crowd)
        print(f"max_flow_bytes {settings.max_flow_bytes}, max_file_bytes {settings.max_file_bytes}; "
              f"target: peak RSS under {TARGET_MB} MB")
        for path in (batch, crowd):
            found = _measure(path, folder)
            verdict = "ok" if found["peak_rss_mb"] < TARGET_MB else "OVER TARGET"
            print(f"{path.name}: {path.stat().st_size / 2**20:.0f} MiB, {found['outcome'][:100]}; "
                  f"{found['seconds']:.1f} s, peak RSS {found['peak_rss_mb']:.0f} MB ({verdict})")


if __name__ == "__main__":
    main()
