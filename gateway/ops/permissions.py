"""Who may read what the gateway keeps: the data directory (the database with its password hashes, the store,
the spool, the SFTP host key) is the gateway's user's alone, the zones only as open as OpenSSH's sshd needs.

What the gateway creates gets its mode whatever the umask: the data directory and its folders 0700, the SQLite
database 0600 (SQLite gives its -wal and -shm the database's mode); the zones' folders 0750, in/ and out/ 0770
and the files published in out/ 0640, so that an account's system user reaches its own zone through a group
shared with the gateway's (README, "sshd mode") and no one else reaches any. Folders and files that exist
already are left as they are, however open: `gateway run` says so of the data directory (warn_if_open), the
operator decides.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from gateway.ops.log import log

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
ZONE_DIR = 0o750  # the zones' root and each account's zone: its user goes through, into in/ and out/
EXCHANGE_DIR = 0o770  # in/ and out/: the account's user writes in/ and deletes from out/, the gateway both
EXCHANGE_FILE = 0o640  # what the gateway publishes in out/: the account's user reads it


def make_dir(path: Path, mode: int) -> None:
    """path, and its missing parents, each made with mode (never more open, whatever the umask, even between
    its creation and its chmod); one that exists is left as it is."""
    if path.is_dir():
        return
    make_dir(path.parent, mode)
    try:
        path.mkdir(mode)
    except FileExistsError:  # made meanwhile by another process
        return
    os.chmod(path, mode)


def make_private_file(path: Path) -> None:
    """An empty file at path, 0600, unless one exists (an empty file is an empty SQLite database)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE))


def warn_if_open(data_dir: Path) -> None:
    """One warning line when users other than the gateway's may enter or read the data directory."""
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        log.warning("data_dir_open", path=str(data_dir), mode=f"{mode:04o}",
                    why="it holds the database (password hashes), the store and the spool: other users may read "
                        "them", fix=f"chmod 700 {data_dir}")
