""".tar.gz headers count: the data of a PAX or GNU long-name header, which tarfile reads whole, is counted in the
expanded size and the ratio and checked before it is read, and the archive is read once, as a stream. Through a
running `gateway run`: a 400 KB archive carrying a 400 MB PAX header (it cost 725 MB and 18 s) is refused at
once, naming the limit, the gateway's memory sampled from /proc meanwhile."""

from __future__ import annotations

import gzip
import io
import os
import random
import tarfile
import time
import tracemalloc
from pathlib import Path

import pytest

from gateway.validate.archive import ArchiveLimits, ArchiveRefused, tar_members
from tests.harness import (
    REPORT_NS,
    SAMPLES,
    GatewayProcess,
    inbox,
    load_samples,
    renumber,
    wait_for,
    wait_report,
    write_config,
)
from tests.probes import RssSampler

MB = 1 << 20
INVOICE = renumber((SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes(), "PAX-1")


def write_pax_bomb(target: Path, header_bytes: int, filler: bytes = b"x") -> None:
    """A .tar.gz of one PAX extended header announcing header_bytes (one comment record of filler), then an invoice;
    streamed, 1 MiB at a time (header_bytes a multiple of it), never held."""
    with gzip.open(target, "wb") as stream:
        header = tarfile.TarInfo("././@PaxHeader")
        header.type, header.size = tarfile.XHDTYPE, header_bytes
        stream.write(header.tobuf(format=tarfile.USTAR_FORMAT))
        record = f"{header_bytes} comment=".encode()  # the record's length, then its key: never completed
        stream.write(record)
        chunk = filler * MB
        for _ in range(header_bytes // MB - 1):
            stream.write(chunk)
        stream.write(chunk[: MB - len(record)])
        member = tarfile.TarInfo("invoice.xml")
        member.size = len(INVOICE)
        stream.write(member.tobuf() + INVOICE + bytes(-len(INVOICE) % tarfile.BLOCKSIZE) + bytes(2 * tarfile.BLOCKSIZE))


def _tar_gz(members: dict[str, bytes], fmt: int, pax: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=fmt) as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.pax_headers = len(content), pax or {}
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


_DEFAULTS = ArchiveLimits()


def _members(path: Path, limits: ArchiveLimits = _DEFAULTS) -> list[tuple[str, int]]:
    return [(name, len(content)) for name, content in tar_members(path, limits)]


def test_headers_of_every_kind_are_read(tmp_path):
    """PAX and GNU archives with long names, within the limits, read as before."""
    long_name = "d/" + "é" * 120 + ".xml"
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        path = tmp_path / f"{fmt}.tar.gz"
        path.write_bytes(_tar_gz({long_name: INVOICE, "b.xml": b"<b/>"}, fmt))
        assert _members(path) == [(long_name, len(INVOICE)), ("b.xml", 4)]


def test_a_pax_header_counts_in_the_expanded_size(tmp_path):
    """A random 200 KB PAX record (no ratio to catch it) passes a 64 KiB expanded size: refused for it."""
    path = tmp_path / "pax.tar.gz"
    noise = random.Random(6).randbytes(100 * 1024).hex()
    path.write_bytes(_tar_gz({"a.xml": b"<a/>"}, tarfile.PAX_FORMAT, {"comment": noise}))
    with pytest.raises(ArchiveRefused, match=r"expands to more than 65536 bytes \(\[ingest\] batch_max_expanded"):
        _members(path, ArchiveLimits(max_expanded_bytes=64 * 1024))
    assert _members(path) == [("a.xml", 4)]  # within the default limits


def test_a_gnu_long_name_counts_in_the_ratio(tmp_path):
    """A GNU long name of 2 MiB of one letter, in an archive of a few KB: a bomb, however small its members."""
    path = tmp_path / "long.tar.gz"
    path.write_bytes(_tar_gz({"n" * (2 * MB) + ".xml": b"<a/>"}, tarfile.GNU_FORMAT))
    assert path.stat().st_size < 16 * 1024
    with pytest.raises(ArchiveRefused, match=r"compressed \d+ times; more than 200 \(\[ingest\] batch_max_ratio\)"):
        _members(path)


def test_a_header_is_refused_before_it_is_read(tmp_path):
    """A 128 MiB PAX header past a 1 MiB document limit: refused before tarfile reads it whole (its stream inflates
    10 KiB of the file at a time, up to some 10 MiB of such a header: what it costs is that, not 128 MiB)."""
    path = tmp_path / "bomb.tar.gz"
    write_pax_bomb(path, 128 * MB)
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveRefused, match=r"a header of 134217728 bytes; one may be at most 1048576 bytes"):
            _members(path, ArchiveLimits(max_member_bytes=MB, max_ratio=10**6))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 48 * MB, peak


def test_the_archive_is_read_once(tmp_path):
    """One streaming pass: the first member comes before the archive's end is known, and a limit passed further on
    still refuses the archive (the flow is refused whole); a second pass would have refused before any member."""
    path = tmp_path / "two.tar.gz"
    path.write_bytes(_tar_gz({"a.xml": b"<a/>", "b.xml": b"<b/>" * 1000}, tarfile.PAX_FORMAT))
    members = tar_members(path, ArchiveLimits(max_expanded_bytes=2048))
    assert next(members) == ("a.xml", b"<a/>")
    with pytest.raises(ArchiveRefused, match="expands to more than 2048 bytes"):
        next(members)


def _cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) process pid has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    """The 400 MB PAX header through `gateway run`: the report, the gateway's CPU seconds and the wall seconds from
    drop to report, the RSS peaks."""
    root = tmp_path_factory.mktemp("pax")
    config = write_config(root, {"validate": {"processes": 1}})
    load_samples(config)
    staged = root / "pax-bomb.tar.gz"
    write_pax_bomb(staged, 400 * MB)
    gateway = GatewayProcess(config)
    gateway.start()
    sampler = RssSampler(gateway.proc.pid).start()
    try:
        wait_for(gateway.started, 120, "the gateway's start")
        dropped, cpu = time.monotonic(), _cpu_seconds(gateway.proc.pid)
        os.rename(staged, inbox(root, "acme") / staged.name)
        report = wait_report(root, "acme", staged.name, timeout=120)
        cpu, elapsed = _cpu_seconds(gateway.proc.pid) - cpu, time.monotonic() - dropped
    finally:
        peaks = sampler.stop()
        assert gateway.stop() == 0
    return report, cpu, elapsed, peaks


def test_a_400_mb_pax_header_is_refused_at_once_naming_the_limit(refused):
    report, cpu, elapsed, peaks = refused
    print(f"drop to report: {elapsed:.1f} s, {cpu:.2f} s of the gateway's CPU; peak RSS:",
          {label: f"{rss / MB:.0f} MB" for label, rss in peaks.items()})
    assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INCIDENTE"
    (rule,) = report.xpath("r:errors/r:error/r:rule/text()", namespaces=REPORT_NS)
    (message,) = report.xpath("r:errors/r:error/r:message/text()", namespaces=REPORT_NS)
    assert rule == "IRR_TAILLE_F" and "a header of 419430400 bytes" in message and "max_file_bytes" in message
    assert cpu < 5  # was 18 s of the only worker (wall time depends on the machine's load, CPU time hardly)
    assert peaks["gateway"] < 500 * MB  # was 725 MB
