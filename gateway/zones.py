"""Zones: each account's exchange folders, in/ (what it sends) and out/ (what it receives)."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from gateway.data.store import write_atomic
from gateway.ops.permissions import EXCHANGE_DIR, EXCHANGE_FILE, ZONE_DIR, make_dir

_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_TEMPORARY_SUFFIXES = (".part", ".tmp", ".filepart")
UPLOAD_PREFIX = ".sftp-upload-"  # the embedded SFTP server's uploads being written (gateway.ingest.sftp.uploads)


def is_final_name(name: str) -> bool:
    """Names under which a file is still being written, by convention of SFTP clients and scripts."""
    return not name.startswith(".") and not name.lower().endswith(_TEMPORARY_SUFFIXES)


def is_account_name(name: str) -> bool:
    """Account names become folder names: letters, digits, '-' and '_' only, so none can escape the root."""
    return _ACCOUNT_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Holding:
    """What a folder holds: its files and their bytes, and those of them under a temporary name (a dot-name,
    *.part...: uploads being written, or left so)."""

    files: int = 0
    bytes: int = 0
    temporary_files: int = 0
    temporary_bytes: int = 0


def holding(folder: Path | int, leave_out: frozenset[str] = frozenset()) -> Holding:
    """What folder (a path, or a descriptor open on it) holds now, but the names in leave_out; links and other
    entries that are not files count as files of no bytes (the zone watcher removes them)."""
    counts = [0, 0, 0, 0]
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name in leave_out:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # gone meanwhile (taken by intake)
                continue
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            temporary = not is_final_name(entry.name)
            counts[0] += 1
            counts[1] += size
            counts[2] += temporary
            counts[3] += size if temporary else 0
    return Holding(*counts)


class Zones:
    def __init__(self, root: Path) -> None:
        self.root = root

    def zone(self, account: str) -> Path:
        if not is_account_name(account):
            raise ValueError(f"invalid account name {account!r}")
        return self.root / account

    def inbox(self, account: str) -> Path:
        return self.zone(account) / "in"

    def outbox(self, account: str) -> Path:
        return self.zone(account) / "out"

    def ensure(self, account: str) -> None:
        """The account's zone, made with the modes sshd mode needs (gateway.ops.permissions) where missing."""
        make_dir(self.zone(account), ZONE_DIR)
        make_dir(self.inbox(account), EXCHANGE_DIR)
        make_dir(self.outbox(account), EXCHANGE_DIR)

    def publish(self, account: str, name: str, content: bytes) -> Path:
        """Put a file in the account's out/, atomically: a polling reader sees it whole or not at all."""
        target = self.outbox(account) / name
        write_atomic(target, content, EXCHANGE_FILE)
        return target

    def accounts(self) -> list[str]:
        """Accounts that have an in/ folder on disk."""
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/in") if p.is_dir() and is_account_name(p.parent.name))

    def holdings(self) -> dict[str, tuple[Holding, Holding]]:
        """What each account's in/ and out/ hold now (`gateway queue`)."""
        return {account: (holding(self.inbox(account)),
                          holding(self.outbox(account)) if self.outbox(account).is_dir() else Holding())
                for account in self.accounts()}
