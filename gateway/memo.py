"""Lookups made once a transaction: a batch's flows ask the same few questions of the same accounts (their
their SIREN, their subscriptions), and a transaction sees one answer to each."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")
_MEMO = "gateway_memo"  # Session.info key; a session_scope's session lives for one transaction


def once(session: Session, key: Hashable, compute: Callable[[], T]) -> T:
    """compute()'s value, computed at the first ask of key in session's transaction."""
    memo = session.info.setdefault(_MEMO, {})
    if key not in memo:
        memo[key] = compute()
    return memo[key]
