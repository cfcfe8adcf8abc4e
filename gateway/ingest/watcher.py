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

The files that held still are taken the accounts in turn, each account's oldest first (gateway.engine.turns), handed
to intake together in batches bounded in time (gateway.ingest.pace; one transaction for their flows, one for their
acknowledgements), for one stable interval at most before the next look: another account's file dropped during a
burst waits for the batch in progress, those while it holds still, then its own. A file this process's SFTP server
has promised to intake is left to it (intake.PROMISED). A folder in in/ is never taken: it is logged once when it
appears and once when it is gone.
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

from watchdog.events import FileClosedEvent, FileCreatedEvent, FileMovedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper

from gateway.app import App
from gateway.data.models import Flow
from gateway.engine.turns import Turns
from gateway.ingest.intake import PROMISED, Arrival, Handed, intake_all
from gateway.ingest.pace import Pace
from gateway.ops.dbdown import log_failure
from gateway.ops.log import log
from gateway.zones import UPLOAD_PREFIX, is_final_name

# The events that hint at a file to take: one appearing under a name (made, linked, moved in) or closed by its
# writer. Only those are asked of inotify: the writes of a file being written (seen by the looks while it is
# candidate), its removal, and any read (the watcher's own look at a file, its lease, must not wake it again) would
# each be an event for watchdog's threads to carry, a few per upload from the SFTP server sharing this process.
_HINTS = [FileCreatedEvent, FileMovedEvent, FileClosedEvent]
# Entries removed from an account's in/ logged in full (each names its entry) in a summary period, before the
# others are only counted (gateway.ops.alarm.Repeats): a shell user planting thousands makes a line a period.
_REMOVALS_LOGGED = 10


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
    def __init__(self, watcher: ZoneWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self.watcher.hint(Path(os.fsdecode(getattr(event, "dest_path", "") or event.src_path)))


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
        self._folders: set[Path] = set()  # folders found in an in/: said to be ignored, not yet to be gone
        self._pace = Pace()  # how many of the files that held still a batch takes

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
        found, folders, inboxes = [], set(), [self.app.zones.inbox(account) for account in self.app.zones.accounts()]
        if observer is not None:
            self._watch(observer, inboxes)
        for inbox in inboxes:
            with os.scandir(inbox) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folders.add(inbox / entry.name)
                        self._ignore_folder(inbox / entry.name)
                    elif is_final_name(entry.name):
                        found.append(inbox / entry.name)
                    elif not entry.name.startswith(UPLOAD_PREFIX):  # the SFTP server's own: it sweeps them
                        self._expire(inbox / entry.name)
        for gone in self._folders - folders:
            self._folders.discard(gone)
            log.info("zone_entry_gone", account=gone.parent.parent.name, path=str(gone), reason="a folder")
        return found

    def _ignore_folder(self, path: Path) -> None:
        """A folder in in/, which may hold anything, is left alone: said once, until it is gone."""
        if path not in self._folders:
            self._folders.add(path)
            log.warning("zone_entry_ignored", account=path.parent.parent.name, path=str(path), reason="a folder")

    def _remove_entry(self, path: Path) -> None:
        """Remove a link, fifo or device from in/, where it would otherwise stay and be logged at every scan
        (unlink never follows a link)."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        self.app.repeats.warning("zone_entry_removed", ("account", "reason"), _REMOVALS_LOGGED,
                                 account=path.parent.parent.name, path=str(path), reason="not a regular file")

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
        self.app.repeats.info("zone_upload_expired", ("account",), _REMOVALS_LOGGED, account=path.parent.parent.name,
                              original_name=path.name, size=st.st_size, idle_seconds=round(idle))

    def _watch(self, observer: BaseObserver, inboxes: list[Path]) -> None:
        for gone in self._watches.keys() - set(inboxes):  # an account's zone removed: its watch ended with it
            observer.unschedule(self._watches.pop(gone))
        for inbox in inboxes:
            if inbox not in self._watches:
                self._watches[inbox] = observer.schedule(_Hints(self), str(inbox), recursive=False,
                                                         event_filter=_HINTS)

    def tick(self, now: float, until: float | None = None) -> int:
        """Look at every candidate once and take those that held still, the accounts in turn, each account's
        oldest first; past until (time.monotonic()), if given, the rest wait for the next tick. Returns how
        many were taken."""
        with self._lock:
            hints, self._hints = self._hints, set()
        for path in hints:
            self._seen.setdefault(path, _Seen(-1, -1, now))
        still: Turns[Path] = Turns()
        for path in sorted(self._seen, key=lambda p: self._seen[p].mtime_ns):  # oldest first
            if self._look(path, now):
                still.put(path.parent.parent.name, path)
        taken, more = 0, True
        while more and (until is None or time.monotonic() < until):
            batch: list[Handed] = []
            size, began = self._pace.size(), time.monotonic()
            while len(batch) < size and (more := (item := still.get(block=False)) is not None):
                if (handed := self._handed(item[1], now)) is not None:
                    batch.append(handed)
            if batch:  # a file refused for want of room is logged by intake; a smaller one may still fit: all tried
                taken += sum(isinstance(flow, Flow) for flow in intake_all(self.app, batch))
                self._pace.took(len(batch), time.monotonic() - began)
        return taken

    def _look(self, path: Path, now: float) -> bool:
        """Whether path is a file that has held still long enough to be taken (its size and mtime are noted
        at each look); a folder is said once, a link, fifo or device removed, a file promised to intake left."""
        if path in PROMISED:
            self._seen.pop(path, None)
            return False
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self._seen.pop(path, None)
            return False
        if not stat.S_ISREG(st.st_mode):  # folders, links, fifos, devices: never followed, never taken
            self._seen.pop(path, None)
            if stat.S_ISDIR(st.st_mode):
                self._ignore_folder(path)
            else:
                self._remove_entry(path)
            return False
        seen = self._seen[path]
        if (seen.size, seen.mtime_ns) != (st.st_size, st.st_mtime_ns):
            self._seen[path] = _Seen(st.st_size, st.st_mtime_ns, now)
            return False
        quiet = self.settings.stable_interval if st.st_size else self.settings.empty_grace
        return now - seen.since >= quiet

    def _handed(self, path: Path, now: float) -> Handed | None:
        """The file at path as handed to intake, unless a writer still holds it (it must close it, then let it
        hold still); intake puts it back if it changed since its size and mtime were noted."""
        seen = self._seen[path]
        if open_for_writing(path):
            self._seen[path] = _Seen(seen.size, seen.mtime_ns, now)
            return None
        del self._seen[path]
        return Handed(path, Arrival(account=path.parent.parent.name, original_name=path.name, channel="zone"),
                      expected=(seen.size, seen.mtime_ns))

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
                    if self.tick(now, until=now + self.settings.stable_interval):
                        continue  # more may be ready: look again at once
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
        # watchdog holds a move out of a folder for 0.5 s, to pair it with a move in, and every event queued
        # behind it waits as long: the rename of each file intake takes would hold back the hints of the files
        # arriving meanwhile. A hint is a name, paired with nothing: nothing is held.
        InotifyMoveEventGrouper.delay = 0
        observer = Observer()
        observer.start()
        return observer
