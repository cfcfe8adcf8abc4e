"""Content-addressed store and atomic file writes.

Everything the gateway receives or emits is kept under its SHA-256, as a read-only copy of its own
(never a link to a file a sender could still reach). Files are written under a temporary name, fsynced,
then renamed, and the directory is fsynced: after a crash a file is either whole or absent, and a reader
polling a directory never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

from gateway.ops.permissions import PRIVATE_DIR, make_dir


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Owed:
    """What a synced_dirs() block owes: files written under temporary names, to fsync and name, and folders to
    fsync."""

    MOST_FILES = 256  # files held open at most: past them, those written so far are settled at once

    def __init__(self) -> None:
        self.files: list[tuple[BinaryIO, Path, Path]] = []  # (open temporary, its path, the name it will take)
        self.dirs: set[Path] = set()

    def add(self, written: BinaryIO, tmp: Path, path: Path) -> None:
        self.files.append((written, tmp, path))
        if len(self.files) >= self.MOST_FILES:
            self.name_files()

    def name_files(self) -> None:
        """fsync the files together, then give each its name (their folders' fsyncs still owed)."""
        files, self.files = self.files, []
        try:
            _fsync_all([written.fileno() for written, _tmp, _path in files])
            for _written, tmp, path in files:
                os.replace(tmp, path)
                self.dirs.add(path.parent)
        except BaseException:
            for _written, tmp, _path in files:
                tmp.unlink(missing_ok=True)
            raise
        finally:
            for written, _tmp, _path in files:
                written.close()

    def abandon(self) -> None:
        for written, tmp, _path in self.files:
            written.close()
            tmp.unlink(missing_ok=True)
        self.files = []


# what the current synced_dirs() block owes, or None outside one
_owed: ContextVar[_Owed | None] = ContextVar("owed_syncs", default=None)
_FSYNC_THREADS = 4
_fsyncs: ThreadPoolExecutor | None = None
_fsyncs_made = threading.Lock()


def _fsync_all(fds: list[int]) -> None:
    """fsync the files, a few at once: the file system commits what arrives together in one journal commit, and a
    thread waiting for the disk holds no lock (os.fsync releases the GIL)."""
    global _fsyncs
    if len(fds) < 2:
        for fd in fds:
            os.fsync(fd)
        return
    with _fsyncs_made:
        if _fsyncs is None:
            _fsyncs = ThreadPoolExecutor(_FSYNC_THREADS, thread_name_prefix="fsync")
    share = -(-len(fds) // _FSYNC_THREADS)
    for done in [_fsyncs.submit(_fsync_each, fds[i:i + share]) for i in range(0, len(fds), share)]:
        done.result()  # the first failure raises, once all have run


def _fsync_each(fds: list[int]) -> None:
    for fd in fds:
        os.fsync(fd)


@contextmanager
def synced_dirs() -> Iterator[None]:
    """Within the block, the store's writes (write_atomic and ContentStore.put) are fsynced and named together at
    its end, and each folder written to is then fsynced once: a batch's files are fsynced a few at once (the file
    system commits them in few journal commits, rather than one a file waited for in turn), and share a few folders,
    where the first fsync commits the others' names with it. A file is fsynced before it is named, so it is whole
    whenever its name is there; its name appears at the block's end (or earlier, once MOST_FILES are waiting) and is
    durable once the block has ended, so the block must end before the commit of what refers to the file (a crash
    before then loses the name, and the uncommitted work is done again), and nothing in it may read a file it wrote.
    A block that raises names and syncs nothing, and deletes what it wrote: nothing may refer to its files. Nested,
    the outer block settles.
    """
    if _owed.get() is not None:
        yield
        return
    owed = _Owed()
    token = _owed.set(owed)
    try:
        yield
    except BaseException:
        owed.abandon()
        raise
    finally:
        _owed.reset(token)
    owed.name_files()
    for directory in sorted(owed.dirs):
        fsync_dir(directory)


def sync_dir(directory: Path) -> None:
    """Make the names in directory durable: now, or within a synced_dirs() block at its end."""
    owed = _owed.get()
    if owed is None:
        fsync_dir(directory)
    else:
        owed.dirs.add(directory)


def _temporary(path: Path) -> Path:
    """A dot-name beside path, which the zone watcher and the SFTP clients' listings skip."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def write_atomic(path: Path, content: bytes, mode: int | None = None) -> None:
    """Write content to path (with mode, if given) so that it appears whole or not at all: at once, or within a
    synced_dirs() block at its end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    owed = _owed.get()
    written = open(tmp, "xb")  # noqa: SIM115 (closed here, or by the block once fsynced)
    try:
        written.write(content)
        written.flush()
        if mode is not None:
            os.chmod(tmp, mode)
        if owed is not None:
            owed.add(written, tmp, path)
            return
        os.fsync(written.fileno())
        written.close()
        os.replace(tmp, path)
    except BaseException:
        written.close()
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class StoreCorrupted(Exception):
    """A stored file's bytes no longer match the digest it is stored under: it must not be sent."""


READ_ONLY = 0o444
_CHUNK = 1 << 20


class ContentStore:
    """Files kept by digest under root/ab/cd/<digest>, read-only; writing the same content twice writes it once.

    Content found already stored has its folder synced all the same (sync_dir): its writer, another thread or a
    process that crashed, may not have made its name durable yet, and the caller is about to refer to it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, content: bytes) -> str:
        digest = sha256(content)
        target = self.path(digest)
        if target.exists():
            sync_dir(target.parent)
        else:
            make_dir(target.parent, PRIVATE_DIR)
            write_atomic(target, content, READ_ONLY)
        return digest

    def put_file(self, source: Path) -> tuple[str, int]:
        """Copy source into the store, hashing exactly the bytes copied; returns (digest, size). Whatever
        happens to source meanwhile or afterwards, the stored copy is what its name says."""
        digest = hashlib.sha256()
        make_dir(self.root, PRIVATE_DIR)
        tmp = _temporary(self.root / "intake")
        try:
            with open(source, "rb") as src, open(tmp, "xb") as dst:
                for chunk in iter(lambda: src.read(_CHUNK), b""):
                    digest.update(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
                size = dst.tell()
            os.chmod(tmp, READ_ONLY)
            target = self.path(digest.hexdigest())
            if target.exists():
                tmp.unlink()
            else:
                make_dir(target.parent, PRIVATE_DIR)
                os.replace(tmp, target)
            sync_dir(target.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return digest.hexdigest(), size

    def verified(self, digest: str) -> bytes:
        """The stored content, checked against its name; StoreCorrupted if it no longer matches."""
        content = self.get(digest)
        if sha256(content) != digest:
            raise StoreCorrupted(f"the stored copy {digest[:16]}... no longer matches its SHA-256")
        return content

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()
