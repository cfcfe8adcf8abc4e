"""Zones: each account's exchange folders, in/ (what it sends) and out/ (what it receives)."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.store import write_atomic

_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def is_account_name(name: str) -> bool:
    """Account names become folder names: letters, digits, '-' and '_' only, so none can escape the root."""
    return _ACCOUNT_NAME.fullmatch(name) is not None


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
        self.inbox(account).mkdir(parents=True, exist_ok=True)
        self.outbox(account).mkdir(parents=True, exist_ok=True)

    def publish(self, account: str, name: str, content: bytes) -> Path:
        """Put a file in the account's out/, atomically: a polling reader sees it whole or not at all."""
        target = self.outbox(account) / name
        write_atomic(target, content)
        return target

    def accounts(self) -> list[str]:
        """Accounts that have an in/ folder on disk."""
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/in") if p.is_dir() and is_account_name(p.parent.name))
