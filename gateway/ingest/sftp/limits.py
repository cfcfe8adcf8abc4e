"""What paramiko's server side does not limit by itself: connections open at once, in all and per IP (failed
passwords per IP: gateway.throttle). Kept in memory, per process."""

from __future__ import annotations

import threading
from collections import Counter


class ConnectionCaps:
    """Counts open connections, in all and per IP address."""

    def __init__(self, total: int, per_ip: int) -> None:
        self.total = total
        self.per_ip = per_ip
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, ip: str) -> bool:
        """Count one more connection from ip, unless a cap is reached (then count nothing)."""
        with self._lock:
            if self._open.total() >= self.total or self._open[ip] >= self.per_ip:
                return False
            self._open[ip] += 1
            return True

    def release(self, ip: str) -> None:
        with self._lock:
            self._open[ip] -= 1
            if self._open[ip] <= 0:
                del self._open[ip]
