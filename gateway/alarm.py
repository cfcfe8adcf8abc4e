"""A standing condition (a full disk, the database out of reach) said once when it begins, reminded now and
then while it lasts, and said once when it ends: never one line per file, retry and thread."""

from __future__ import annotations

import threading
import time

from gateway.log import log


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

    def clear(self) -> None:
        """A step went through: the condition is over."""
        with self._lock:
            if not self._on or time.monotonic() - self._last_failure < self.settle:
                return
            self._on = False
            failures, self._failures = self._failures, 0
            self._last_line = -float("inf")
        log.info(self.cleared, refusals=failures)
