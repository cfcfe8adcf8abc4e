"""What paramiko's server side does not limit by itself: connections open at once, those still logging in
(startups) counted apart from logged-in sessions, and the penalties of addresses whose connections never log in
(failed passwords: gateway.access.throttle); the files and folders each connection and each account hold open; what
each account holds in its in/. Kept in memory, per process.

Startups follow OpenSSH's MaxStartups start:rate:full: from `start` startups open, a new connection is refused
with a probability rising from `rate` percent to 100 at `full`. An address holding no startup is spared that
drop: when `full` are open, the oldest startup of the address holding the most is closed to let it in. A flood
from a few addresses thus takes only its own share, and a client whose handshake takes a moment always gets
its turn; a silent one keeps its place for login_grace at most, then its address is refused for a penalty
(OpenSSH's PerSourcePenalties). Logged-in sessions have caps of their own, which no startup ever counts against.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.config import SftpSettings
from gateway.zones import holding


class Refused(Exception):
    """Refused by a limit: a connection at accept (the reason a short phrase, for the log and the metric), an
    open or an upload (the message for the client, naming the limit)."""


class Refusal(int):
    """An SFTP status code that carries its own message for the client (paramiko sends the code's stock text),
    as ZoneSFTPServer answers it."""

    message: str

    def __new__(cls, code: int, message: str) -> Refusal:
        refusal = super().__new__(cls, code)
        refusal.message = message
        return refusal


@dataclass(eq=False)
class Slot:
    """One admitted connection: a startup until it logs in, then a session."""

    ip: str
    close: Callable[[], None]  # cuts the connection short (an evicted startup)
    since: float
    session: bool = False
    released: bool = field(default=False, repr=False)


class ConnectionCaps:
    """Counts startups and sessions, in all and per IP address, and the addresses under a penalty."""

    _SWEEP_ABOVE = 4096  # penalised addresses remembered before those forgiven are swept out

    def __init__(self, settings: SftpSettings, clock: Callable[[], float] = time.monotonic,
                 chance: Callable[[], float] = random.random) -> None:
        self.start, self.rate, self.full = settings.startups
        self.startups_per_ip = settings.max_startups_per_ip
        self.sessions_total, self.sessions_per_ip = settings.max_connections, settings.max_connections_per_ip
        self.penalty_seconds, self.penalty_max = settings.penalty_seconds, settings.penalty_max
        self.clock, self.chance = clock, chance
        self._startups: dict[Slot, None] = {}  # oldest first
        self._startups_of: Counter[str] = Counter()
        self._sessions_of: Counter[str] = Counter()
        self._penalised_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def admit(self, ip: str, close: Callable[[], None]) -> tuple[Slot, Slot | None]:
        """Count a new connection from ip as a startup: (its slot, the startup closed to make room, if one
        was), or Refused."""
        now = self.clock()
        with self._lock:
            if self._penalised_until.get(ip, 0.0) > now:
                raise Refused("penalty")
            held, open_ = self._startups_of[ip], len(self._startups)
            if held >= self.startups_per_ip:
                raise Refused("too many startups from address")
            evicted = None
            if held and open_ >= self.start and self.chance() < self._drop_chance(open_):
                raise Refused("startups")
            if open_ >= self.full:
                evicted = self._oldest_of_busiest()
                self._release(evicted)
            slot = Slot(ip, close, now)
            self._startups[slot] = None
            self._startups_of[ip] += 1
        if evicted is not None:
            evicted.close()
        return slot, evicted

    def _drop_chance(self, open_: int) -> float:
        if open_ >= self.full:
            return 1.0
        return (self.rate + (100 - self.rate) * (open_ - self.start) / (self.full - self.start)) / 100

    def _oldest_of_busiest(self) -> Slot:
        busiest = max(self._startups_of.values())
        return next(slot for slot in self._startups if self._startups_of[slot.ip] == busiest)

    def room(self, ip: str) -> bool:
        """Whether a login from ip would find a session free now."""
        with self._lock:
            return self._sessions_of.total() < self.sessions_total and self._sessions_of[ip] < self.sessions_per_ip

    def logged_in(self, slot: Slot) -> bool:
        """Count slot as a session from now on, unless the session caps are reached (then it stays a startup)."""
        with self._lock:
            if slot.released or slot.session:
                return not slot.released
            if self._sessions_of.total() >= self.sessions_total or self._sessions_of[slot.ip] >= self.sessions_per_ip:
                return False
            self._release(slot)
            slot.released, slot.session = False, True
            self._sessions_of[slot.ip] += 1
            return True

    def release(self, slot: Slot) -> None:
        with self._lock:
            self._release(slot)

    def _release(self, slot: Slot) -> None:
        if slot.released:
            return
        slot.released = True
        counter = self._sessions_of if slot.session else self._startups_of
        if not slot.session:
            del self._startups[slot]
        counter[slot.ip] -= 1
        if counter[slot.ip] <= 0:
            del counter[slot.ip]

    def penalise(self, ip: str) -> float:
        """A connection from ip reached the login grace without logging in: refuse the address for
        penalty_seconds more (at most penalty_max from now); returns the seconds it is refused for."""
        now = self.clock()
        with self._lock:
            until = min(max(self._penalised_until.get(ip, now), now) + self.penalty_seconds, now + self.penalty_max)
            self._penalised_until[ip] = until
            if len(self._penalised_until) > self._SWEEP_ABOVE:
                for forgiven in [a for a, end in self._penalised_until.items() if end <= now]:
                    del self._penalised_until[forgiven]
            return until - now

    def counts(self) -> tuple[int, int]:
        """(startups, sessions) open now."""
        with self._lock:
            return len(self._startups), self._sessions_of.total()


class HandleCaps:
    """Files and folders open at once, per connection (the caller counts them) and per account."""

    def __init__(self, per_session: int, per_account: int) -> None:
        self.per_session, self.per_account = per_session, per_account
        self._of: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, account: str, open_in_session: int) -> None:
        """Count one more handle of account, or Refused (nothing counted)."""
        with self._lock:
            if open_in_session >= self.per_session:
                raise Refused(f"too many open files: max_open_handles ({self.per_session}) per connection reached, "
                              "close some first")
            if self._of[account] >= self.per_account:
                raise Refused(f"too many open files: max_open_handles_per_account ({self.per_account}) reached over "
                              "this account's connections, close some first")
            self._of[account] += 1

    def give_back(self, account: str, handles: int = 1) -> None:
        with self._lock:
            self._of[account] -= handles
            if self._of[account] <= 0:
                del self._of[account]


class InboxQuota:
    """What an account may hold in its in/, in bytes and files, temporary uploads included.

    What the other files of in/ hold is read from the folder at an upload's open when the last look is older
    than _LOOK_EVERY, and again whenever a figure would go past the quota (intake may have taken files
    meanwhile); between two looks, the uploads this process closes are added to it, so an upload never costs a
    scan of a folder that a backlog may fill (a sending session would slow down as it grows). The uploads this
    process is writing are counted as they grow, so that several connections of one account share the quota.
    """

    _LOOK_EVERY = 1.0  # seconds: how stale the count of other writers' files (other processes, shells) may be

    def __init__(self, max_bytes: int, max_files: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes, self.max_files, self.clock = max_bytes, max_files, clock
        self._writing: dict[str, dict[str, int]] = {}  # account -> {temporary name: bytes written}
        self._rest: dict[str, _Held] = {}  # account -> the other files of its in/, at the last look and since
        self._lock = threading.Lock()

    def admit(self, account: str, inbox: int, temporary: str) -> None:
        """Count a new upload of account (in its in/, open as inbox, under the name temporary), or Refused."""
        with self._lock:
            writing = self._writing.setdefault(account, {})
            rest = self._rest.get(account)
            if rest is None or self.clock() - rest.looked >= self._LOOK_EVERY or not self._room(rest, writing):
                rest = self._look(account, inbox)
            if rest.files + len(writing) >= self.max_files:
                self._forget_if_idle(account)
                raise Refused(f"quota reached: inbox_max_files ({self.max_files} files in in/, uploads included); "
                              "send again once the gateway has taken some")
            if rest.bytes + sum(writing.values()) >= self.max_bytes:
                self._forget_if_idle(account)
                raise Refused(self._bytes_refusal())
            writing[temporary] = 0

    def grow(self, account: str, inbox: int, temporary: str, size: int) -> None:
        """The upload temporary now holds size bytes, or Refused (and it is no longer counted)."""
        with self._lock:
            writing = self._writing[account]
            if size <= writing[temporary]:
                return
            others = sum(writing.values()) - writing[temporary]
            if self._rest[account].bytes + others + size > self.max_bytes and \
                    self._look(account, inbox).bytes + others + size > self.max_bytes:
                raise Refused(self._bytes_refusal())
            writing[temporary] = size

    def ended(self, account: str, temporary: str, kept: int = 0) -> None:
        """The upload temporary is closed: kept bytes of it stay in in/ (under its name), none if discarded."""
        with self._lock:
            del self._writing[account][temporary]
            if kept:
                rest = self._rest[account]
                rest.files, rest.bytes = rest.files + 1, rest.bytes + kept
            self._forget_if_idle(account)

    def _room(self, rest: _Held, writing: dict[str, int]) -> bool:
        return rest.files + len(writing) < self.max_files and rest.bytes + sum(writing.values()) < self.max_bytes

    def _look(self, account: str, inbox: int) -> _Held:
        held = holding(inbox, leave_out=frozenset(self._writing[account]))
        rest = self._rest[account] = _Held(held.files, held.bytes, self.clock())
        return rest

    def _forget_if_idle(self, account: str) -> None:
        """An account writing nothing keeps only its last look, until it is stale."""
        if not self._writing[account]:
            del self._writing[account]
            rest = self._rest.get(account)
            if rest is not None and self.clock() - rest.looked >= self._LOOK_EVERY:
                del self._rest[account]

    def _bytes_refusal(self) -> str:
        return (f"quota reached: inbox_max_bytes ({self.max_bytes} bytes in in/, uploads included); send again "
                "once the gateway has taken some")


@dataclass
class _Held:
    """The files of an account's in/ other than its uploads being written: those of the last look, at looked
    (InboxQuota.clock), and those closed since."""

    files: int
    bytes: int
    looked: float
