"""Failed logins over SFTP, the console and the HTTP API, one rule for all: counted per client address and
account name, a growing delay between two guesses, then the name refused from that address for a while;
failures for many names from one address ban the address.

Guessing one account's password: the n-th failure within ban_seconds makes the next guess wait
delay * 2**(n-1) seconds (at most max_delay), whatever connection or request it comes on: a password is only
checked at its turn (turn()), and concurrent attempts queue, each reserving its turn as a row before the check.
The ban_after-th failure within ban_seconds refuses that name's passwords from that address for ban_seconds:
one supplier's typos lock out neither the other accounts behind the same address nor its own key. Failures for
ban_accounts different names from one address within ban_seconds ban the address for ban_seconds (its
connections and tokens are refused). Names are counted alike whether an account of that name exists or not,
so that the answers never tell. An API token names no account: its failures count under no name.

The failures are rows of the database (LoginFailure), shared by every process, so a restart forgets nothing;
each process keeps the bans and locks it has seen in memory for the checks made on every connection and
request, and reads the database before each password check. While the database cannot record a failure (its
disk full, or the server gone), the bans and locks already seen still hold and each wrong password waits the
longest delay, max_delay, before its answer: logins go on, guessing stays slow.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar, overload

from sqlalchemy import delete, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gateway.data.db import session_scope
from gateway.data.models import LoginFailure, as_utc
from gateway.ops.dbdown import is_database_down
from gateway.ops.diskfull import is_disk_full

_LOCK_SPACE = 0x7468726F  # "thro": PostgreSQL advisory locks serialising one address's turns
_NAME_CHARS = 64  # longer names are no account's: kept cut, so a client cannot store much
_CLEANUP_EVERY = 60.0  # seconds between two deletions of the failures no rule looks at any more
# Failures logged in full in a summary period, before they are only counted (gateway.ops.alarm.Repeats): each was a
# guess checked at its turn, so a few say what the throttle did, and a flood of them makes a line a period.
LOGGED_FAILURES = 10


class ThrottleSettings(Protocol):
    """[sftp] and [web] both have these."""

    auth_delay: float
    auth_delay_max: float
    ban_after: int
    ban_accounts: int
    ban_seconds: float


@dataclass(frozen=True)
class Turn:
    """When a guess of account's password from ip may be checked; refused says why it may not be at all
    ("banned": the address; "locked": the name from that address; "busy": not before the caller's deadline)."""

    ip: str
    account: str | None
    at: float  # seconds since the epoch
    wait: float  # seconds from now to then
    refused: str | None = None
    recorded: bool = True  # False: the database could not keep it (_Unrecorded)


class FailureThrottle:
    def __init__(self, engine: Engine, delay: float, max_delay: float, ban_after: int, ban_accounts: int,
                 ban_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.delay, self.max_delay = delay, max_delay
        self.ban_after, self.ban_accounts, self.ban_seconds = ban_after, ban_accounts, ban_seconds
        self.clock = clock
        self._banned: dict[str, float] = {}  # address -> until
        self._locked: dict[tuple[str, str | None], float] = {}  # (address, name) -> until
        self._seen = threading.Lock()  # over the two: threads of the server or the web note and sweep them
        self._next_cleanup = 0.0
        self._load()

    @classmethod
    def of(cls, engine: Engine, settings: ThrottleSettings) -> FailureThrottle:
        return cls(engine, settings.auth_delay, settings.auth_delay_max, settings.ban_after, settings.ban_accounts,
                   settings.ban_seconds)

    def banned(self, ip: str) -> bool:
        """Whether the address is banned (as this process last saw it: no database read)."""
        return self._banned.get(ip, 0.0) > self.clock()

    def locked(self, ip: str, account: str | None) -> bool:
        """Whether the address is banned or the name locked from it (no database read)."""
        return self.banned(ip) or self._locked.get((ip, _name(account)), 0.0) > self.clock()

    def turn(self, ip: str, account: str, within: float) -> Turn:
        """Reserve the next check of a password for account from ip, at most within seconds from now."""
        account = _name(account)
        now = self.clock()
        if self.locked(ip, account):
            return Turn(ip, account, now, 0.0, refused="banned" if self.banned(ip) else "locked")
        with _Unrecorded() as failure:
            with session_scope(self.engine) as session:
                rows = self._rows(session, ip, now, writing=True)
                if self.locked(ip, account):
                    return Turn(ip, account, now, 0.0, refused="banned" if self.banned(ip) else "locked")
                mine = [at for name, at in rows if name == account and at > now - self.ban_seconds]
                at = _stored(max(now, mine[-1] + self._delay(len(mine))) if mine else now)
                if at - now > within:
                    return Turn(ip, account, at, at - now, refused="busy")
                session.execute(insert(LoginFailure).values(ip=ip, account=account, at=_moment(at)))
            return Turn(ip, account, at, at - now)
        return Turn(ip, account, now, 0.0, recorded=not failure)

    def succeeded(self, turn: Turn) -> None:
        """The password was right: the name's failures from that address are forgotten."""
        if turn.recorded:
            with _Unrecorded(), session_scope(self.engine) as session:
                session.execute(delete(LoginFailure).where(LoginFailure.ip == turn.ip, _named(turn.account),
                                                           LoginFailure.at <= _moment(turn.at)))
        with self._seen:
            self._locked.pop((turn.ip, turn.account), None)

    def failed(self, turn: Turn) -> float:
        """The password was wrong (its turn's row stays, as a failure): the seconds to wait before answering."""
        with _Unrecorded():
            if turn.recorded:
                with session_scope(self.engine, write=False) as session:
                    rows = self._rows(session, turn.ip, self.clock())
                return self._delay(sum(1 for name, at in rows if name == turn.account
                                       and turn.at - self.ban_seconds < at <= turn.at))
        return self.max_delay

    def fail(self, ip: str) -> float:
        """A failure naming no account, checked without a turn (an API token: nothing to guess in it but its
        whole random value), recorded now; the seconds to wait before answering."""
        now = _stored(self.clock())
        with _Unrecorded() as failure, session_scope(self.engine) as session:
            session.execute(insert(LoginFailure).values(ip=ip, account=None, at=_moment(now)))
        return self.failed(Turn(ip, None, now, 0.0, recorded=not failure))

    def _delay(self, failures: int) -> float:
        return min(self.delay * 2 ** (failures - 1), self.max_delay) if failures else 0.0

    def _rows(self, session: Session, ip: str, now: float, writing: bool = False) -> list[tuple[str | None, float]]:
        """ip's failures any rule still looks at, oldest first (the bans and locks they make noted); writing,
        ip's turns are serialised until the session ends, and the older failures deleted."""
        if writing:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:space, :key)"),
                                {"space": _LOCK_SPACE, "key": _lock_key(ip)})
            self._cleanup(session, now)
        rows = [(row.account, as_utc(row.at).timestamp()) for row in session.execute(
            select(LoginFailure.account, LoginFailure.at)
            .where(LoginFailure.ip == ip, LoginFailure.at > _moment(now - 2 * self.ban_seconds))
            .order_by(LoginFailure.at, LoginFailure.id))]
        self._judge(ip, rows, now)
        return rows

    def _cleanup(self, session: Session, now: float) -> None:
        if now >= self._next_cleanup:
            self._next_cleanup = now + _CLEANUP_EVERY
            session.execute(delete(LoginFailure).where(LoginFailure.at <= _moment(now - 2 * self.ban_seconds)))
            with self._seen:
                _expire(self._banned, now)
                _expire(self._locked, now)

    def _judge(self, ip: str, rows: list[tuple[str | None, float]], now: float) -> None:
        """Note the ban and the locks ip's failures make: ban_after failures of a name within ban_seconds lock
        it for ban_seconds after the last; ban_accounts names within ban_seconds ban the address as long."""
        times: dict[str | None, list[float]] = defaultdict(list)
        for name, at in rows:
            times[name].append(at)
        locks = {name: max((moments[i] + self.ban_seconds for i in range(self.ban_after - 1, len(moments))
                            if moments[i] - moments[i - self.ban_after + 1] <= self.ban_seconds), default=0.0)
                 for name, moments in times.items()}
        ban = max((end + self.ban_seconds for j, (_, end) in enumerate(rows)
                   if len({name for name, at in rows[:j + 1] if at >= end - self.ban_seconds}) >= self.ban_accounts),
                  default=0.0)
        with self._seen:
            for name, until in locks.items():
                _note(self._locked, (ip, name), until, now)
            _note(self._banned, ip, ban, now)

    def _load(self) -> None:
        """The bans and locks the failures in the database make now (a restart forgets none)."""
        now = self.clock()
        with session_scope(self.engine, write=False) as session:
            ips = session.execute(select(LoginFailure.ip).distinct()
                                  .where(LoginFailure.at > _moment(now - 2 * self.ban_seconds))).scalars().all()
            for ip in ips:
                self._rows(session, ip, now)


class _Unrecorded:
    """Whether the block it guards met a database that cannot keep a failure (truthy then); other errors pass."""

    def __init__(self) -> None:
        self.met = False

    def __bool__(self) -> bool:
        return self.met

    def __enter__(self) -> _Unrecorded:
        return self

    def __exit__(self, kind, error, _traceback) -> bool:
        self.met = error is not None and (is_disk_full(error) or is_database_down(error))
        return self.met



def _note(table: dict, key: object, until: float, now: float) -> None:
    if until > now:
        table[key] = until
    else:
        table.pop(key, None)


_Key = TypeVar("_Key")


def _expire(table: dict[_Key, float], now: float) -> None:
    for key in [key for key, until in table.items() if until <= now]:
        del table[key]


@overload
def _name(account: str) -> str: ...
@overload
def _name(account: None) -> None: ...
def _name(account: str | None) -> str | None:
    return None if account is None else account[:_NAME_CHARS].replace("\x00", "?")


def _named(account: str | None):
    return LoginFailure.account.is_(None) if account is None else LoginFailure.account == account


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _stored(seconds: float) -> float:
    """seconds as the database keeps them (to the microsecond), so that a turn finds its own row."""
    return _moment(seconds).timestamp()


def _lock_key(ip: str) -> int:
    return int.from_bytes(hashlib.blake2b(ip.encode(), digest_size=4).digest(), "big", signed=True)
