"""Content-addressed store and atomic file writes.

Everything the gateway receives or emits is kept under its SHA-256. Files are written under a
temporary name, fsynced, then renamed, and the directory is fsynced: after a crash a file is
either whole or absent, and a reader polling a directory never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, content: bytes) -> None:
    """Write content to path so that it appears whole or not at all.

    The temporary name is a dot-file, which the zone watcher and the SFTP clients' listings skip.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class ContentStore:
    """Files kept by digest under root/ab/cd/<digest>; writing the same content twice is a no-op."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, content: bytes) -> str:
        digest = sha256(content)
        target = self.path(digest)
        if not target.exists():
            write_atomic(target, content)
        return digest

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()
