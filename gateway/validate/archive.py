"""Batch flows: the invoices inside a .zip or .tar.gz, read one member at a time.

Every limit is checked before any member is read: member count, size of each member and in all,
compression ratio, and member kinds and names (no absolute path, no '..', no links or devices). Sizes
declared in the headers are then enforced while reading, so an archive that lies about them cannot
expand past them. A refusal names the rule and the member, and refuses the whole flow.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from gateway.findings import Finding


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 500
    max_expanded_bytes: int = 1 << 30
    max_ratio: float = 200.0
    max_member_bytes: int = 100 * 1024 * 1024  # one document: a member is read whole, so this bounds memory


class ArchiveRefused(Exception):
    """The archive cannot be processed safely; the finding says why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.finding = Finding(stage="admissibility", rule=rule, message=message)


def _check_name(name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and path.parts[0].endswith(":")):
        raise ArchiveRefused("IRR_ARCHIVE_F", f"Archive member {name!r} has an absolute path or '..': refused")
    if any(ord(c) < 32 for c in name):
        raise ArchiveRefused("IRR_ARCHIVE_F", f"Archive member {name!r} has control characters in its name")


class _Totals:
    """Running count and expanded size, refused as soon as a limit is passed."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits, self.count, self.expanded = limits, 0, 0

    def add(self, name: str, size: int) -> None:
        _check_name(name)
        if size > self.limits.max_member_bytes:
            raise ArchiveRefused("IRR_TAILLE_F", f"Archive member {name!r} is {size} bytes; one document may be "
                                                 f"at most {self.limits.max_member_bytes} bytes")
        self.count += 1
        self.expanded += size
        if self.count > self.limits.max_members:
            raise ArchiveRefused("IRR_ARCHIVE_F",
                                 f"The archive holds more than {self.limits.max_members} members")
        if self.expanded > self.limits.max_expanded_bytes:
            raise ArchiveRefused("IRR_TAILLE_F", f"The archive expands to more than "
                                                 f"{self.limits.max_expanded_bytes} bytes")

    def check_ratio(self, compressed: int, what: str) -> None:
        if compressed and self.expanded / compressed > self.limits.max_ratio:
            raise ArchiveRefused("IRR_ARCHIVE_F", f"{what} is compressed {self.expanded / compressed:.0f} times; "
                                                  f"more than {self.limits.max_ratio:.0f} is refused as a bomb")

    def check_not_empty(self) -> None:
        if not self.count:
            raise ArchiveRefused("IRR_VIDE_F", "The archive holds no file")


def zip_members(path: Path, limits: ArchiveLimits) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each file in a zip, after checking the central directory against limits."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if not i.is_dir()]
            totals = _Totals(limits)
            for info in infos:
                _check_zip_entry(info, limits)
                totals.add(info.filename, info.file_size)
            totals.check_ratio(path.stat().st_size, "The archive")
            totals.check_not_empty()
            for info in infos:
                with archive.open(info) as member:
                    yield info.filename, _read_exactly(member, info.file_size, info.filename)
    # zipfile signals a compression method it cannot read (deflate64, ...) with its own NotImplementedError:
    # for the supplier that is an unreadable archive like any other.
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise ArchiveRefused("IRR_SYNTAX", f"Not a readable zip archive: {exc}") from None


def _check_zip_entry(info: zipfile.ZipInfo, limits: ArchiveLimits) -> None:
    if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
        raise ArchiveRefused("IRR_ARCHIVE_F", f"Member {info.filename!r} is compressed "
                                              f"{info.file_size / info.compress_size:.0f} times: refused as a bomb")
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the creator recorded no Unix type
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ArchiveRefused("IRR_ARCHIVE_F", f"Archive member {info.filename!r} is a link or a special file")
    if info.flag_bits & 0x1:
        raise ArchiveRefused("IRR_ARCHIVE_F", f"Archive member {info.filename!r} is encrypted")


def tar_members(path: Path, limits: ArchiveLimits) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each file in a .tar.gz: one streaming pass checks limits, a second reads."""
    try:
        totals = _Totals(limits)
        with tarfile.open(path, "r|gz") as archive:
            for entry in archive:
                if entry.isdir():
                    continue
                if not entry.isreg():
                    raise ArchiveRefused("IRR_ARCHIVE_F",
                                         f"Archive member {entry.name!r} is a link or a special file")
                totals.add(entry.name, entry.size)
        totals.check_ratio(path.stat().st_size, "The archive")
        totals.check_not_empty()
        with tarfile.open(path, "r|gz") as archive:
            for entry in archive:
                if entry.isreg():
                    yield entry.name, _read_exactly(archive.extractfile(entry), entry.size, entry.name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveRefused("IRR_SYNTAX", f"Not a readable .tar.gz archive: {exc}") from None


def _read_exactly(stream, size: int, name: str) -> bytes:
    data = stream.read(size + 1)
    if len(data) != size:
        raise ArchiveRefused("IRR_ARCHIVE_F", f"Archive member {name!r} is not the size its header declares")
    return data
