"""Failed logins per client address, over SFTP and the HTTP API: a growing delay, then a temporary ban.

Kept in memory, per process: a restart forgives every address, which is acceptable for limits meant to
slow guessing down, not to remember offenders.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable


class FailureThrottle:
    """Failed logins per IP address: a growing delay before each answer, then a temporary ban.

    A failure is remembered for ban_seconds. The n-th remembered failure waits
    delay * 2**(n-1) seconds (at most max_delay); the ban_after-th bans the address for ban_seconds.
    """

    _SWEEP_ABOVE = 4096  # addresses remembered before forgotten ones are swept out

    def __init__(self, delay: float, max_delay: float, ban_after: int, ban_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.delay, self.max_delay = delay, max_delay
        self.ban_after, self.ban_seconds = ban_after, ban_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._banned_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def banned(self, ip: str) -> bool:
        with self._lock:
            return self._banned_until.get(ip, 0.0) > self.clock()

    def failed(self, ip: str) -> float:
        """Record a failure from ip; returns the seconds to wait before answering it."""
        now = self.clock()
        with self._lock:
            failures = self._recent(ip, now)
            failures.append(now)
            if len(failures) >= self.ban_after:
                self._banned_until[ip] = now + self.ban_seconds
            if len(self._failures) > self._SWEEP_ABOVE:
                self._sweep(now)
            return min(self.delay * 2 ** (len(failures) - 1), self.max_delay)

    def _recent(self, ip: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(ip, deque())
        while failures and failures[0] <= now - self.ban_seconds:
            failures.popleft()
        return failures

    def _sweep(self, now: float) -> None:
        for ip in [ip for ip in self._failures if not self._recent(ip, now)]:
            del self._failures[ip]
        for ip in [ip for ip, until in self._banned_until.items() if until <= now]:
            del self._banned_until[ip]
