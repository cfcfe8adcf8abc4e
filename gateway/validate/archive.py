"""Batch flows: the invoices inside a .zip or .tar.gz, read one member at a time.

Every limit is checked before what it bounds is read: member count, size of each member and in all, compression
ratio, and member kinds and names (no absolute path, no '..', no links or devices, and each part of a member's
path a name the one rule of gateway.ingest.names allows). A zip's are checked on its central directory before any
member is read; a .tar.gz is read once, as a stream, each header checked before what it announces (the data of
a PAX or GNU long-name header count in the expanded size and ratio as a member's content does). Sizes declared
in the headers are then enforced while reading, so an archive that lies about them cannot expand past them. A
refusal names the rule, the member and the limit ([ingest] setting), and refuses the whole flow, even one some
members of which were read already.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gateway.data.findings import Finding
from gateway.ingest.names import name_refusal


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 500
    max_expanded_bytes: int = 1 << 30
    max_ratio: float = 200.0
    max_member_bytes: int = 100 * 1024 * 1024  # one document: a member is read whole, so this bounds memory


# Bytes one entry of a zip's central directory may take (its name, extra fields and comment), generously: the
# directory zipfile reads whole, some 600 bytes of memory an entry, is refused past twice the members allowed.
_DIRECTORY_ENTRY_BYTES = 4096


class ArchiveRefused(Exception):
    """The archive cannot be processed safely; the finding says why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.finding = Finding(stage="admissibility", rule=rule, message=message)


def _check_name(name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and path.parts[0].endswith(":")):
        raise ArchiveRefused("IRR_ARCHIVE_F", f"Archive member {name!r} has an absolute path or '..': refused")
    for part in path.parts:
        refusal = name_refusal(part)
        if refusal is not None:
            raise ArchiveRefused(refusal.rule, f"Archive member {name!r}: {refusal.message}")


class _Totals:
    """Running count and expanded size, refused as soon as a limit is passed; the ratio to the archive's
    `compressed` bytes is checked as the size grows when given (a stream), by check_ratio otherwise."""

    def __init__(self, limits: ArchiveLimits, compressed: int = 0) -> None:
        self.limits, self.compressed, self.count, self.expanded = limits, compressed, 0, 0

    def add(self, name: str, size: int) -> None:
        _check_name(name)
        if size > self.limits.max_member_bytes:
            raise ArchiveRefused("IRR_TAILLE_F", f"Archive member {name!r} is {size} bytes; one document may be "
                                                 f"at most {self.limits.max_member_bytes} bytes "
                                                 "([ingest] max_file_bytes)")
        self.count += 1
        if self.count > self.limits.max_members:
            raise ArchiveRefused("IRR_ARCHIVE_F",
                                 f"The archive holds more than {self.limits.max_members} members "
                                 "([ingest] batch_max_members)")
        self._grow(size)

    def header(self, announced: int) -> None:
        """A tar header block and the data it announces (PAX records, a GNU long name: tarfile reads them whole,
        as a member's content is read), counted before they are read."""
        if announced > self.limits.max_member_bytes:
            raise ArchiveRefused("IRR_TAILLE_F", f"The archive holds a header of {announced} bytes; one may be at "
                                                 f"most {self.limits.max_member_bytes} bytes ([ingest] max_file_bytes)")
        self._grow(tarfile.BLOCKSIZE + announced)

    def _grow(self, size: int) -> None:
        self.expanded += size
        if self.expanded > self.limits.max_expanded_bytes:
            raise ArchiveRefused("IRR_TAILLE_F", f"The archive expands to more than "
                                                 f"{self.limits.max_expanded_bytes} bytes "
                                                 "([ingest] batch_max_expanded_bytes)")
        self.check_ratio(self.compressed, "The archive")

    def check_ratio(self, compressed: int, what: str) -> None:
        if compressed and self.expanded / compressed > self.limits.max_ratio:
            raise ArchiveRefused("IRR_ARCHIVE_F", f"{what} is compressed {self.expanded / compressed:.0f} times; "
                                                  f"more than {self.limits.max_ratio:.0f} ([ingest] batch_max_ratio) "
                                                  "is refused as a bomb")

    def check_not_empty(self) -> None:
        if not self.count:
            raise ArchiveRefused("IRR_VIDE_F", "The archive holds no file")


def zip_members(path: Path, limits: ArchiveLimits) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each file in a zip, after checking the central directory against limits."""
    try:
        _check_directory_size(path, limits)
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


def _check_directory_size(path: Path, limits: ArchiveLimits) -> None:
    """Refuse a central directory too large for the members allowed before zipfile reads it: a 1 GB zip of empty
    entries would hold some twelve million, 7 GB of memory."""
    with open(path, "rb") as fh:
        # the end record, as zipfile finds it (None: not a zip, which it says); private, so not in the stubs
        end = zipfile._EndRecData(fh)  # type: ignore[attr-defined]
    most = 2 * limits.max_members * _DIRECTORY_ENTRY_BYTES
    size = None if end is None else end[zipfile._ECD_SIZE]  # type: ignore[attr-defined]  # private, as above
    if size is not None and size > most:
        raise ArchiveRefused("IRR_ARCHIVE_F", f"The archive's directory takes {size} bytes, more "
                                              f"than {limits.max_members} members may ([ingest] batch_max_members)")


def _check_zip_entry(info: zipfile.ZipInfo, limits: ArchiveLimits) -> None:
    if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
        raise ArchiveRefused("IRR_ARCHIVE_F", f"Member {info.filename!r} is compressed "
                                              f"{info.file_size / info.compress_size:.0f} times, more than "
                                              f"{limits.max_ratio:.0f} ([ingest] batch_max_ratio): refused as a bomb")
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the creator recorded no Unix type
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ArchiveRefused("IRR_ARCHIVE_F", f"Archive member {info.filename!r} is a link or a special file")
    if info.flag_bits & 0x1:
        raise ArchiveRefused("IRR_ARCHIVE_F", f"Archive member {info.filename!r} is encrypted")


def tar_members(path: Path, limits: ArchiveLimits) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each file in a .tar.gz, in one streaming pass: each header is counted and checked
    before what it announces is read, each member before its content."""
    totals = _Totals(limits, path.stat().st_size)
    try:
        with tarfile.open(path, "r|gz", tarinfo=_counted_by(totals)) as archive:
            for entry in archive:
                if entry.isdir():
                    continue
                if not entry.isreg():
                    raise ArchiveRefused("IRR_ARCHIVE_F",
                                         f"Archive member {entry.name!r} is a link or a special file")
                totals.add(entry.name, entry.size)
                yield entry.name, _read_exactly(archive.extractfile(entry), entry.size, entry.name)
        totals.check_not_empty()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveRefused("IRR_SYNTAX", f"Not a readable .tar.gz archive: {exc}") from None


# Headers whose data tarfile reads whole before the header of the member they describe: PAX (extended, global,
# Solaris) and GNU long names and link names.
_ANNOUNCING = frozenset({tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                         tarfile.GNUTYPE_LONGLINK})


def _counted_by(totals: _Totals) -> type[tarfile.TarInfo]:
    """A TarInfo class whose every header is counted by totals before tarfile goes on: _proc_member is the hook
    tarfile gives subclasses, called on each header block once read, before the data it announces."""

    class Counted(tarfile.TarInfo):
        def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
            totals.header(self.size if self.type in _ANNOUNCING else 0)
            return super()._proc_member(archive)  # type: ignore[misc]  # the private hook is not in the stubs

    return Counted


def _read_exactly(stream, size: int, name: str) -> bytes:
    data = stream.read(size + 1)
    if len(data) != size:
        raise ArchiveRefused("IRR_ARCHIVE_F", f"Archive member {name!r} is not the size its header declares")
    return data
