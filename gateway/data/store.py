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
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from gateway.ops.permissions import PRIVATE_DIR, make_dir


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# the directories whose fsync the current synced_dirs() block owes, or None outside one
_owed: ContextVar[set[Path] | None] = ContextVar("owed_dir_syncs", default=None)


@contextmanager
def synced_dirs() -> Iterator[None]:
    """Within the block, the store's writes (write_atomic, ContentStore.put and put_file) leave the fsync of their
    directory to the block's end, where each directory written to is fsynced once: a batch's files share a few
    folders, and on a journalling file system the first of those fsyncs commits the others' names with it. Each
    file is fsynced before it is renamed, so it is whole whenever its name is there; its name is durable once the
    block has ended, so the block must end before the commit of what refers to the file (a crash before then loses
    the name, and the uncommitted work is done again). A block that raises syncs nothing: nothing may refer to its
    files. Nested, the outer block syncs.
    """
    if _owed.get() is not None:
        yield
        return
    owed: set[Path] = set()
    token = _owed.set(owed)
    try:
        yield
    finally:
        _owed.reset(token)
    for directory in sorted(owed):
        fsync_dir(directory)


def sync_dir(directory: Path) -> None:
    """Make the names in directory durable: now, or within a synced_dirs() block at its end."""
    owed = _owed.get()
    if owed is None:
        fsync_dir(directory)
    else:
        owed.add(directory)


def _temporary(path: Path) -> Path:
    """A dot-name beside path, which the zone watcher and the SFTP clients' listings skip."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def write_atomic(path: Path, content: bytes, mode: int | None = None) -> None:
    """Write content to path (with mode, if given) so that it appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        with open(tmp, "xb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_dir(path.parent)


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
