"""Saying once what happens many times. A standing condition (a full disk, the database out of reach) is said
once when it begins, reminded now and then while it lasts, and said once when it ends: never one line per file,
retry and thread. Repeated events (refused connections, failed logins, refused entries) are said the first time,
then counted, and summed up once a period: never one line per connection in a flood."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.ops.log import log


class Alarm:
    """Error lines about one condition, at most one per remind_every seconds, and one line once it is over.

    Each line counts the failures since the previous one, so nothing is hidden, only summed up.
    """

    def __init__(self, raised: str, cleared: str, hint: str, remind_every: float = 60.0, settle: float = 0.0) -> None:
        """settle: how long after its last failure a success ends the condition (failures of one outage met
        by several threads, some after another thread's first success, are then one outage)."""
        self.raised, self.cleared, self.hint, self.remind_every = raised, cleared, hint, remind_every
        self.settle = settle
        self._lock = threading.Lock()
        self._last_line = self._last_failure = -float("inf")
        self._on = False  # an error line has been logged and its end not yet
        self._failures = 0

    @property
    def on(self) -> bool:
        return self._on

    def report(self, step: str, exc: BaseException, **context: object) -> None:
        """Step (intake, a worker...) met the condition; context says for what (account, flow...)."""
        now = time.monotonic()
        with self._lock:
            self._failures += 1
            self._last_failure = now
            if now - self._last_line < self.remind_every:
                return
            self._last_line, self._on = now, True
            failures, self._failures = self._failures, 0
        log.error(self.raised, step=step, error=str(exc).strip(), refusals=failures, hint=self.hint, **context)

    def clear(self, since: float | None = None) -> None:
        """A step went through: the condition is over, unless the step began (since, time.monotonic()) before the
        last failure, which its success then does not contradict (a report written before the disk filled)."""
        with self._lock:
            if not self._on or time.monotonic() - self._last_failure < self.settle:
                return
            if since is not None and since < self._last_failure:
                return
            self._on = False
            failures, self._failures = self._failures, 0
            self._last_line = -float("inf")
        log.info(self.cleared, refusals=failures)


# fields of an event counted apart in its summary (distinct values, up to _DISTINCT_MAX), and their names there
_DISTINCT = {"ip": "addresses", "account": "accounts"}
_DISTINCT_MAX = 10_000


@dataclass
class _Kind:
    since: float  # the start of its period
    logged: int = 0  # lines logged in full in this period
    count: int = 0  # and those counted instead
    distinct: dict[str, set] = field(default_factory=dict)
    summary: threading.Timer | None = None


class Repeats:
    """Events of one kind, the event's name and the values of a few of its fields (key: a reason, say; never a
    field a client chooses freely, such as its address, so that a flood makes few kinds): the first `first` of a
    period are logged in full, the others counted; at the end of the period, one line `<event>_repeated` says how
    many there were, with the key, and how many distinct addresses and accounts. A kind counted in one period goes
    on being counted in the next, so a flood makes one line a period; a period without any ends it."""

    def __init__(self, period: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period, self.clock = period, clock
        self._kinds: dict[tuple, _Kind] = {}
        self._lock = threading.Lock()

    def warning(self, event: str, key: tuple[str, ...] = (), first: int = 1, **fields: Any) -> None:
        self._note("warning", event, key, first, fields)

    def info(self, event: str, key: tuple[str, ...] = (), first: int = 1, **fields: Any) -> None:
        self._note("info", event, key, first, fields)

    def _note(self, level: str, event: str, key: tuple[str, ...], first: int, fields: dict[str, Any]) -> None:
        kind_key = (level, event, *((name, fields.get(name)) for name in key))
        now = self.clock()
        with self._lock:
            kind = self._kinds.get(kind_key)
            if kind is None or (not kind.count and now - kind.since >= self.period):
                kind = self._kinds[kind_key] = _Kind(now)
            if kind.logged < first:
                kind.logged += 1
            else:
                kind.count += 1
                for name in _DISTINCT.keys() & fields.keys() - set(key):
                    values = kind.distinct.setdefault(_DISTINCT[name], set())
                    if len(values) < _DISTINCT_MAX:
                        values.add(fields[name])
                if kind.summary is None:
                    kind.summary = threading.Timer(kind.since + self.period - now, self._summarise, (kind_key,))
                    kind.summary.daemon = True
                    kind.summary.start()
                return
        getattr(log, level)(event, **fields)

    def _summarise(self, kind_key: tuple) -> None:
        """Log how many events of the kind were counted in its period, and start its next period."""
        level, event, *key = kind_key
        now = self.clock()
        with self._lock:
            kind = self._kinds[kind_key]
            count, distinct, seconds = kind.count, kind.distinct, now - kind.since
            kind.since, kind.count, kind.distinct, kind.summary = now, 0, {}, None
        if count:
            getattr(log, level)(f"{event}_repeated", **dict(key), count=count, seconds=round(seconds, 1),
                                **{name: len(values) for name, values in distinct.items()})

    def flush(self) -> None:
        """Sum up every count now (the process stops): nothing is left unsaid."""
        with self._lock:
            pending = [(kind_key, kind.summary) for kind_key, kind in self._kinds.items() if kind.summary]
        for kind_key, summary in pending:
            summary.cancel()
            self._summarise(kind_key)
