"""A full disk: telling it apart from other failures, and saying so once.

A data volume that fills up (ENOSPC or EDQUOT on a write, SQLite's "database or disk is full",
PostgreSQL's disk_full) is no fault of the file or flow at hand, and it passes once space is freed.
So intake refuses files without acknowledging them, leaving them where they were, and workers keep
what they hold and try it again, without counting it as a failed attempt. Every component tells the
app's one alarm (gateway.ops.alarm), so that a full disk makes one error line (and a reminder a minute while it
lasts) rather than one per file and per retry, and one line when it is over.
"""

from __future__ import annotations

import errno

from gateway.ops.alarm import Alarm

RETRY_SECONDS = 2.0  # work held up by a full disk is tried again after this, then after twice as long...
RETRY_MAX_SECONDS = 30.0  # ...up to this: a flow judged again and again would fill the log with its events
_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL = 13  # SQLITE_FULL, the primary result code
_POSTGRES_DISK_FULL = "53100"  # SQLSTATE disk_full


class DiskFull(OSError):
    """No room to take a file: it was left where it was, unacknowledged."""


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether exc, or an error it was raised from (a driver's error under SQLAlchemy's), is a full disk."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _ERRNOS:
            return True
        if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == _SQLITE_FULL:
            return True
        if getattr(exc, "sqlstate", None) == _POSTGRES_DISK_FULL:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def alarm() -> Alarm:
    """The alarm every component tells of a full disk."""
    return Alarm("disk_full", "disk_space_recovered",
                 hint="free space on the data volume: files wait unacknowledged, work resumes by itself")
