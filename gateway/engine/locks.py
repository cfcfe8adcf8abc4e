"""Files a process holds while it works on them, so that other processes sharing the folder leave them alone.

Several gateway processes, on one host or several, share the data directory and the zones (one shared
mount). A file one of them is working on (a spool entry, a download, an upload being written) is locked
with fcntl.lockf from the moment it appears under its name until it is gone. POSIX record locks are what
NFS carries between hosts, and they die with their process: at once on one host, across hosts when the
NFS server's lease on the dead client ends. Recovery elsewhere takes only what no live process holds.

A lock is taken just after the file is created, so a taker may slip in between: the creator checks,
once locked, that the name still is its file. POSIX locks belong to the process, not to a thread, and
the process loses them when it closes any descriptor of the file: so the process also keeps the names it
holds, and take() never opens one of them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.data.store import fsync_dir

_held: set[str] = set()
_guard = threading.Lock()


def lock(fd: int, name: str | Path, dir_fd: int | None = None) -> bool:
    """Lock the file open as fd (waiting while a process that took it removes it); False if name is no
    longer that file."""
    fcntl.lockf(fd, fcntl.LOCK_EX)
    return _is(fd, name, dir_fd)


@contextmanager
def scratch(path: Path) -> Iterator[int]:
    """A new file at path, open for reading and writing, held until the block ends and then removed if
    still there. Read it through that descriptor only (see take())."""
    with _holding(path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        try:
            if not lock(fd, path):
                raise FileNotFoundError(errno.ENOENT, "removed by another process before it was locked", str(path))
            yield fd
        finally:
            path.unlink(missing_ok=True)  # while still locked: no one sees it unheld under its name
            os.close(fd)


@contextmanager
def create(path: Path, content: bytes, sync_dir: bool = True) -> Iterator[None]:
    """Write path whole and durably, and hold it from the moment it appears until the block ends.

    Its content is fsynced before it is named; with sync_dir False, the fsync of its folder that makes the name
    durable is left to the caller (who creates several there, and syncs the folder once before relying on them).
    The caller removes it before the end if its work is done; whatever is left is for a recovery to take.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with _holding(path), scratch(tmp) as fd:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.rename(tmp, path)
        if sync_dir:
            fsync_dir(path.parent)
        yield


@contextmanager
def take(path: Path) -> Iterator[int | None]:
    """Hold path if no live process holds it, this one included: yields a descriptor of it, open for
    reading and writing, now the caller's to finish (remove); or None if it is someone else's or gone.

    Read it through that descriptor only: opening and closing it again would drop the lock.
    """
    with _guard:
        mine = str(path) in _held
        _held.add(str(path))
    if mine:
        yield None
        return
    try:
        yield from _take_unheld(path)
    finally:
        with _guard:
            _held.discard(str(path))


def _take_unheld(path: Path) -> Iterator[int | None]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)  # lockf's exclusive lock needs write access
    except FileNotFoundError:
        yield None
        return
    try:
        yield fd if _try_lock(fd) and _is(fd, path) else None
    finally:
        os.close(fd)


@contextmanager
def _holding(path: Path) -> Iterator[None]:
    with _guard:
        _held.add(str(path))
    try:
        yield
    finally:
        with _guard:
            _held.discard(str(path))


def _try_lock(fd: int) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise
    return True


def _is(fd: int, name: str | Path, dir_fd: int | None = None) -> bool:
    """Whether name (relative to dir_fd) is the file open as fd."""
    try:
        named = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (own.st_dev, own.st_ino)
