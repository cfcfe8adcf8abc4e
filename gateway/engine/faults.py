"""Crash points: where the crash tests make a process die in the middle of its work, as a power cut would.

`GATEWAY_CRASH_AT=<point>` in a process's environment makes it SIGKILL itself (no cleanup, no flush) when it
reaches that point. Operators never set it; unset, a point costs a comparison.
"""

from __future__ import annotations

import os
import signal

_AT = os.environ.get("GATEWAY_CRASH_AT")


def point(name: str) -> None:
    """Die here if this is the point the environment names."""
    if name == _AT:
        os.kill(os.getpid(), signal.SIGKILL)
