"""The reference data that the work on each flow and delivery reads again and again: the directory's structures
and services, the accounts with their SIRETs and subscriptions, their push endpoints. Each process keeps what it
has read in memory, until the database says it changed.

The database counts the writes to those tables (table `changes`: triggers bump its 'reference' row in the writing
transaction, whatever writes, migration 0009). A process reads the counter once a poll (refresh: the worker does
at each of its polls), and at a lookup once its last read is older than a poll interval (a command, the API, a
batch that takes long); when it moved, everything kept is dropped. So a change that any process commits is seen
at the next poll, and from then on a lookup answers what a fresh read would.

A lookup that finds nothing kept reads through the caller's session, and keeps the value only if that transaction
sees the counter as last read (read just before the value): a transaction begun before a change it does not see
yet, or one writing reference data itself, keeps nothing (and a value kept is committed data: a transaction does
not see its own writes through it). Values kept are immutable (Core rows, tuples), shared by the process's
threads, and at most MAX_KEPT of them, the oldest dropped first (one key a SIRET routed to: a flood of unknown
SIRETs must not grow the process without bound). With no counter row, nothing is kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Engine, Row

from gateway.data import tables
from gateway.data.db import reading
from gateway.data.tables import Role

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")
COUNTER = "reference"  # the row of table changes that counts the writes to the reference data
MAX_KEPT = 10_000
_COUNTED = select(tables.changes.c.counter).where(tables.changes.c.name == COUNTER)
_MISSING = object()
_structure, _service, _account, _sirets = tables.structure, tables.service, tables.account, tables.account_siret
_subscription, _endpoint = tables.subscription, tables.endpoint
# what makes a push endpoint (its lease and listing are a pull's, written at each poll, and not counted)
_ENDPOINT = [_endpoint.c[name] for name in ("account", "direction", "host", "port", "user", "key_path", "host_key",
                                            "directory")]


class Reference:
    """The reference lookups of one process. With no engine, nothing is kept: every lookup reads (a database
    without the counter, such as a test's scratch one)."""

    def __init__(self, engine: Engine | None = None, horizon: float = 0.0) -> None:
        self._engine, self._horizon = engine, horizon
        self._kept: tuple[int | None, dict[Hashable, Any]] = (None, {})  # the counter they were read at, the values
        self._checked = float("-inf")  # when the counter was last read (time.monotonic)
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Read the counter (one SELECT, outside any transaction of the caller's, so a committed value) and drop
        everything kept if it moved."""
        if self._engine is None:
            return
        with reading(self._engine) as connection:
            counter = connection.execute(_COUNTED).scalar()
        with self._lock:
            if counter != self._kept[0]:
                self._kept = (counter, {})
            self._checked = time.monotonic()

    def _lookup(self, session: Session, key: Hashable, load: Callable[[], T]) -> T:
        """load()'s value for key: kept, or read now through session (and kept if the counter allows)."""
        if self._engine is None:
            return load()
        if time.monotonic() - self._checked > self._horizon:
            self.refresh()
        counter, kept = self._kept
        value = kept.get(key, _MISSING)
        if value is not _MISSING:
            return value
        seen = session.execute(_COUNTED).scalar()  # its own pending writes flushed first: they bump it
        value = load()
        if seen == counter and counter is not None:
            with self._lock:
                if len(kept) >= MAX_KEPT:
                    del kept[next(iter(kept))]
                kept[key] = value
        return value

    def structure(self, session: Session, siret: str) -> Row | None:
        """The directory's structure of that SIRET (a row of table structure)."""
        return self._lookup(session, ("structure", siret), lambda: session.execute(
            select(_structure).where(_structure.c.siret == siret)).first())

    def service(self, session: Session, siret: str, code: str) -> Row | None:
        """The structure's service of that code (a row of table service)."""
        return self._lookup(session, ("service", siret, code), lambda: session.execute(
            select(_service).where(_service.c.siret == siret, _service.c.code == code)).first())

    def recipient(self, session: Session, siret: str) -> str | None:
        """The first recipient account, by name, holding the SIRET."""
        return self._lookup(session, ("recipient", siret), lambda: session.execute(
            select(_account.c.name).join(_sirets, _sirets.c.account == _account.c.name)
            .where(_sirets.c.siret == siret, _account.c.role == Role.RECIPIENT)
            .order_by(_account.c.name).limit(1)).scalar())

    def account(self, session: Session, name: str) -> Row | None:
        """The account of that name (a row of table account)."""
        return self._lookup(session, ("account", name), lambda: session.execute(
            select(_account).where(_account.c.name == name)).first())

    def sirets(self, session: Session, account: str) -> tuple[str, ...]:
        """The SIRETs the account holds, in order."""
        return self._lookup(session, ("sirets", account), lambda: tuple(session.execute(
            select(_sirets.c.siret).where(_sirets.c.account == account).order_by(_sirets.c.siret)).scalars()))

    def subscriptions(self, session: Session, account: str) -> tuple[Row, ...]:
        """The account's subscriptions (rows of table subscription), by id."""
        return self._lookup(session, ("subscriptions", account), lambda: tuple(session.execute(
            select(_subscription).where(_subscription.c.account == account).order_by(_subscription.c.id))))

    def subscription(self, session: Session, subscription_id: int) -> Row | None:
        """The subscription of that id (a row of table subscription)."""
        return self._lookup(session, ("subscription", subscription_id), lambda: session.execute(
            select(_subscription).where(_subscription.c.id == subscription_id)).first())

    def push_endpoint(self, session: Session, account: str) -> Row | None:
        """The account's own SFTP server its files are pushed to (its settings, as a row of table endpoint)."""
        return self._lookup(session, ("push", account), lambda: session.execute(
            select(*_ENDPOINT).where(_endpoint.c.account == account,
                                     _endpoint.c.direction == tables.Direction.PUSH)).first())


FRESH = Reference()  # reads every time
