"""The drop-zone channel: files written into an account's in/ on disk.

watchdog's events are only hints that make the gateway react quickly; the periodic scan of every
in/ is the truth, since events are lost when inotify's queue overflows and files already present at
start-up give none. A file is taken once it has a final name, its size and mtime have held still
for one interval (an empty file for a longer grace, as an upload may not have started writing yet), and no
process of this host holds it open for writing: a writer pausing mid-file is waited for. That last check
is a read lease (fcntl F_SETLEASE, refused while the file is open for writing); where leases cannot tell (a
file of another owner without CAP_LEASE, a network file system) holding still is all there is, and senders
should write under a temporary name, then rename (README, "SFTP"). A file that changed between the last
look and its claim is put back (gateway.ingest.intake).
A file that finds the disk full is left where it is and forgotten: the next scan finds it again, so it
is tried once a scan interval until there is room. A temporary upload (NAME.part, .NAME...) left untouched
for [sftp] stale_upload_seconds is removed at a scan, whichever channel wrote it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import EVENT_TYPE_CLOSED_NO_WRITE, EVENT_TYPE_OPENED, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from gateway.app import App
from gateway.dbdown import log_failure
from gateway.diskfull import DiskFull
from gateway.ingest.intake import Arrival, intake
from gateway.log import log
from gateway.zones import UPLOAD_PREFIX, is_final_name


# Reading a file changes nothing in it: the watcher's own look at a file (its lease) must not wake it again.
_NOT_HINTS = frozenset({EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE})


def open_for_writing(path: Path) -> bool | None:
    """Whether a process of this host has path open for writing (a read lease is refused then); None where
    a lease cannot tell."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return True if exc.errno in (errno.EAGAIN, errno.EBUSY) else None
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


class _Hints(FileSystemEventHandler):
    def __init__(self, watcher: "ZoneWatcher") -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if not event.is_directory and event.event_type not in _NOT_HINTS:
            self.watcher.hint(Path(os.fsdecode(getattr(event, "dest_path", "") or event.src_path)))


def _refuse_entry(path: Path, st: os.stat_result) -> None:
    """Remove a link, fifo or device from in/, where it would otherwise stay and be logged at every scan
    (unlink never follows a link); a folder, which may hold anything, is only logged."""
    account = path.parent.parent.name
    if stat.S_ISDIR(st.st_mode):
        log.warning("zone_entry_ignored", account=account, path=str(path), reason="a folder")
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    log.warning("zone_entry_removed", account=account, path=str(path), reason="not a regular file")


class ZoneWatcher:
    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings.ingest
        self.root = app.settings.gateway.zones_dir
        self._seen: dict[Path, _Seen] = {}
        self._hinted = threading.Event()
        self._lock = threading.Lock()
        self._hints: set[Path] = set()
        self._watches: dict[Path, ObservedWatch] = {}

    def hint(self, path: Path) -> None:
        if path.parent.name == "in" and is_final_name(path.name):
            with self._lock:
                self._hints.add(path)
            self._hinted.set()

    def wake(self) -> None:
        """End the wait for the next scan or event now (the gateway is stopping)."""
        self._hinted.set()

    def scan(self, observer: BaseObserver | None = None) -> list[Path]:
        """Every file under a final name in every account's in/; the observer, if any, is set to watch each
        in/ folder (only those: the gateway's own writes to out/ would otherwise flood it with events)."""
        found, inboxes = [], [self.app.zones.inbox(account) for account in self.app.zones.accounts()]
        if observer is not None:
            self._watch(observer, inboxes)
        for inbox in inboxes:
            with os.scandir(inbox) as entries:
                for entry in entries:
                    if is_final_name(entry.name):
                        found.append(inbox / entry.name)
                    elif not entry.name.startswith(UPLOAD_PREFIX):  # the SFTP server's own: it sweeps them
                        self._expire(inbox / entry.name)
        return found

    def _expire(self, path: Path) -> None:
        """Remove a temporary upload untouched for stale_upload_seconds (a client that never renamed it),
        unless a process of this host still has it open for writing."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        idle = time.time() - st.st_mtime
        if not stat.S_ISREG(st.st_mode) or idle < self.app.settings.sftp.stale_upload_seconds or open_for_writing(path):
            return
        try:
            path.unlink()
        except FileNotFoundError:  # renamed or resumed meanwhile
            return
        log.info("zone_upload_expired", account=path.parent.parent.name, original_name=path.name, size=st.st_size,
                 idle_seconds=round(idle))

    def _watch(self, observer: BaseObserver, inboxes: list[Path]) -> None:
        for gone in self._watches.keys() - set(inboxes):  # an account's zone removed: its watch ended with it
            observer.unschedule(self._watches.pop(gone))
        for inbox in inboxes:
            if inbox not in self._watches:
                self._watches[inbox] = observer.schedule(_Hints(self), str(inbox), recursive=False)

    def tick(self, now: float) -> int:
        """Look at every candidate once; take those that held still; returns how many were taken."""
        with self._lock:
            hints, self._hints = self._hints, set()
        for path in hints:
            self._seen.setdefault(path, _Seen(-1, -1, now))
        taken = 0
        for path in sorted(self._seen, key=lambda p: self._seen[p].mtime_ns):  # oldest first
            try:
                taken += self._consider(path, now)
            except DiskFull:  # logged by intake; a smaller file may still fit, so the others are tried too
                pass
        return taken

    def _consider(self, path: Path, now: float) -> bool:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self._seen.pop(path, None)
            return False
        if not stat.S_ISREG(st.st_mode):  # links, fifos, devices: never followed, never taken
            self._seen.pop(path, None)
            _refuse_entry(path, st)
            return False
        seen = self._seen[path]
        if (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
            self._seen[path] = _Seen(st.st_size, st.st_mtime_ns, now)
            return False
        quiet = self.settings.stable_interval if st.st_size else self.settings.empty_grace
        if now - seen.since < quiet:
            return False
        if open_for_writing(path):  # a writer pausing: it must close the file, then let it hold still
            self._seen[path] = _Seen(st.st_size, st.st_mtime_ns, now)
            return False
        del self._seen[path]
        account = path.parent.parent.name
        arrival = Arrival(account=account, original_name=path.name, channel="zone")
        return intake(self.app, path, arrival, expected=(st.st_size, st.st_mtime_ns)) is not None

    def run(self, stop: threading.Event) -> None:
        observer = self._observe()
        next_scan = 0.0
        try:
            while not stop.is_set():
                now = time.monotonic()
                try:
                    if now >= next_scan:
                        next_scan = now + self.settings.scan_interval
                        for path in self.scan(observer):
                            self._seen.setdefault(path, _Seen(-1, -1, now))
                    self.tick(now)
                except Exception:  # one file or folder that fails must not stop intake for every account
                    log_failure("zone_watch_failed")  # tried again: from in/ at the next scan, or by recover()
                self._hinted.wait(self.settings.stable_interval / 2 if self._seen else self.settings.scan_interval)
                self._hinted.clear()
        finally:
            if observer is not None:
                observer.stop()
                observer.join()

    def _observe(self):
        if not self.settings.watch_events:
            return None
        observer = Observer()
        observer.start()
        return observer
