"""Uploads: written under a hidden name, named on a clean close, handed to intake when final.

A file being written is a dot-file in the account's in/ (`.sftp-upload-<random>`), which the zone
watcher and listings ignore, so no half-written file is ever seen under its final name. A clean
close gives it the name the client asked for. paramiko also closes the handles a dropped connection
left open, after calling session_ended(); those uploads are cut short and are deleted instead.

A final name is then handed to intake from a thread of its own: intake fsyncs and commits (about
8 ms), and a client waiting for that at each close would upload several times slower. The file is
first linked under its final name in in/, so that after a crash the zone watcher takes it like any
dropped file: a close answered OK is not lost if the gateway stops or crashes; meanwhile it is promised to
intake (gateway.ingest.intake.PROMISED), and this process's zone watcher leaves it alone. That thread takes what
has arrived once the uploads have paused for a moment (QUIET), or once the oldest has waited MOST, and hands them to
intake together (intake_all: one transaction for their flows, one for their acknowledgements). Where the sessions
share the GIL with it (a server in the gateway's process), the flows it commits set the workers going: competing with
a burst, they made each of the client's round trips wait, and a session upload 2-4 times slower (benchmarks/sftp.py);
a lone upload waits QUIET. It takes the accounts in turn (gateway.engine.turns), in batches bounded in time
(gateway.ingest.pace): an upload of another account waits for one short batch, then for its own.

A server in a process of its own (gateway.ingest.sftp.process) names the files the same way (name_final), and
tells the gateway's process, whose Handoff takes them (take).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import threading
import time
from typing import Protocol

import paramiko
from paramiko.sftp import SFTP_FAILURE, SFTP_OK, SFTP_PERMISSION_DENIED

from gateway.app import App
from gateway.engine import locks
from gateway.engine.turns import Turns
from gateway.ingest.intake import PROMISED, Arrival, Handed, intake, intake_all
from gateway.ingest.pace import Pace
from gateway.ingest.sftp.limits import InboxQuota, Refusal, Refused
from gateway.ops.dbdown import log_failure
from gateway.ops.diskfull import DiskFull
from gateway.ops.log import log
from gateway.zones import UPLOAD_PREFIX, is_final_name

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class Handoff:
    """Moves finished uploads to their names and feeds final ones to intake, each account's in order, the
    accounts in turn."""

    QUIET = 0.02  # seconds without a new upload after which those waiting are taken (a client's next file is sooner)
    MOST = 0.5  # seconds an upload waits at most for them to pause: what a stream without pauses adds to its acks

    def __init__(self, app: App) -> None:
        self.app = app
        self._waiting: Turns[tuple[str, float]] = Turns()  # final names and when they were queued, per account
        self._last = 0.0  # when the last upload was queued (time.monotonic())
        self._stopping = threading.Event()
        self._pace = Pace()  # how many uploads a batch takes
        self._thread = threading.Thread(target=self._run, name="sftp-intake", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Hand over what is queued, then stop."""
        self._stopping.set()
        self._waiting.close()
        self._thread.join()

    def finish(self, account: str, dir_fd: int, source: str, name: str) -> None:
        """Give the file source (in the account's in/, open as dir_fd) its final name, and queue it (name_final)."""
        path = self.app.zones.inbox(account) / name
        PROMISED.add(path)  # before it appears under that name
        try:
            named = name_final(self.app, account, dir_fd, source, name)
        except BaseException:
            PROMISED.release(path)
            raise
        if named:
            self._queue(account, name)
        else:
            PROMISED.release(path)

    def take(self, account: str, name: str) -> None:
        """Queue a file another process (gateway.ingest.sftp.process) gave its final name in the account's in/."""
        PROMISED.add(self.app.zones.inbox(account) / name)
        self._queue(account, name)

    def _queue(self, account: str, name: str) -> None:
        self._last = time.monotonic()
        self._waiting.put(account, (name, self._last))

    def _run(self) -> None:
        while (first := self._waiting.get()) is not None:
            account, (name, queued) = first
            self._pause(queued)
            batch, size = [(account, name)], self._pace.size()
            while len(batch) < size and (item := self._waiting.get(block=False)) is not None:
                batch.append((item[0], item[1][0]))
            handed = [Handed(self.app.zones.inbox(account) / name, Arrival(account=account, original_name=name,
                                                                           channel="sftp"))
                      for account, name in batch]
            began = time.monotonic()
            try:  # a file refused for want of room (logged by intake) waits in in/ for the watcher
                intake_all(self.app, handed)
            except Exception:  # those not yet taken stay in in/ under their final names: the watcher retries them
                log_failure("sftp_intake_failed", files=len(handed), accounts=sorted({a for a, _ in batch}),
                            original_names=[name for _, name in batch][:10])
            finally:
                for one in handed:
                    PROMISED.release(one.path)
            self._pace.took(len(batch), time.monotonic() - began)

    def _pause(self, queued: float) -> None:
        """Wait for the uploads to pause for QUIET, until MOST after queued at most (at once when stopping)."""
        while (wait := min(self._last + self.QUIET, queued + self.MOST) - time.monotonic()) > 0:
            if self._stopping.wait(wait):
                return


def name_final(app: App, account: str, dir_fd: int, source: str, name: str) -> bool:
    """Link the file source (in the account's in/, open as dir_fd) under its final name and remove source; True
    if it is to be queued. Never replaces a file: if an earlier upload of the same name still waits for intake,
    this one is taken at once under its current name instead (False), so that neither is lost."""
    try:
        os.link(source, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        try:
            intake(app, app.zones.inbox(account) / source, Arrival(account=account, original_name=name, channel="sftp"))
        except DiskFull:  # the close is answered with a failure: the client sends the file again later
            with contextlib.suppress(FileNotFoundError):  # gone if it had to stay in the spool instead
                os.unlink(source, dir_fd=dir_fd)
            raise
        return False
    os.unlink(source, dir_fd=dir_fd)
    return True


def sweep(app: App) -> None:
    """Delete uploads a dead process left unfinished; those another live one is writing are locked."""
    for account in app.zones.accounts():
        for path in app.zones.inbox(account).glob(UPLOAD_PREFIX + "*"):
            with locks.take(path) as fd:
                if fd is not None:
                    path.unlink()
                    log.info("sftp_upload_discarded", account=account, reason="left by a stopped process")


class Finisher(Protocol):
    """What names finished uploads and sees them to intake: a Handoff, or a Forward to another process's."""

    def finish(self, account: str, dir_fd: int, source: str, name: str) -> None: ...


class UploadSession(Protocol):
    """What an upload needs to know of its SFTP session (fs.ZoneSession)."""

    account: str
    ended: bool
    max_flow_bytes: int
    handoff: Finisher
    quota: InboxQuota

    def uploaded(self, name: str, attributes: paramiko.SFTPAttributes) -> None: ...


class Upload(paramiko.SFTPHandle):
    """A file being uploaded into in/: size-capped, counted in the account's quota, written in place, named
    only on a clean close. Refused if the quota has no room for it."""

    def __init__(self, session: UploadSession, dir_fd: int, name: str, resume: bool) -> None:
        super().__init__()
        self.session, self.name = session, name
        self.temporary = UPLOAD_PREFIX + secrets.token_hex(8)
        self.dir_fd = os.dup(dir_fd)  # the session's own may be closed before this handle
        counted = False
        try:
            session.quota.admit(session.account, self.dir_fd, self.temporary)
            counted = True
            self.fd: int | None = self._open(resume)
        except BaseException:
            if counted:
                session.quota.ended(session.account, self.temporary)
            os.close(self.dir_fd)
            raise

    def _open(self, resume: bool) -> int:
        """A new file, or, when the client resumes a temporary name without truncating, that file; locked
        while it is written, so that another SFTP process starting meanwhile does not sweep it away."""
        if resume and not is_final_name(self.name) and self._is_regular(self.name):
            os.rename(self.name, self.temporary, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
            fd = os.open(self.temporary, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.dir_fd)
        else:
            fd = os.open(self.temporary, _CREATE, 0o640, dir_fd=self.dir_fd)
        if not locks.lock(fd, self.temporary, self.dir_fd):
            os.close(fd)
            raise FileNotFoundError(errno.ENOENT, "removed by another process before it was locked")
        return fd

    def _is_regular(self, name: str) -> bool:
        try:
            return stat.S_ISREG(os.stat(name, dir_fd=self.dir_fd, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return False

    def write(self, offset: int, data: bytes) -> int:
        if self.fd is None:
            return SFTP_FAILURE
        if offset + len(data) > self.session.max_flow_bytes:
            self._discard("larger than max_flow_bytes")
            return Refusal(SFTP_FAILURE, f"file too large: [ingest] max_flow_bytes ({self.session.max_flow_bytes} "
                                         "bytes)")
        try:
            self.session.quota.grow(self.session.account, self.dir_fd, self.temporary, offset + len(data))
        except Refused as refused:
            self._discard(f"quota: {refused}")
            return Refusal(SFTP_FAILURE, str(refused))
        try:
            os.pwrite(self.fd, data, offset)
        except OSError as exc:
            self._discard(f"write failed: {exc.strerror}")
            return paramiko.SFTPServer.convert_errno(exc.errno)
        return SFTP_OK

    def read(self, offset: int, length: int) -> int:
        return SFTP_PERMISSION_DENIED

    def stat(self) -> paramiko.SFTPAttributes | int:
        if self.fd is None:
            return SFTP_FAILURE
        return paramiko.SFTPAttributes.from_stat(os.fstat(self.fd), self.name)

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        return SFTP_OK  # modes, owners and times are the gateway's business

    def close(self) -> None:
        if self.fd is None:
            return
        if self.session.ended:
            self._discard("connection lost before the file was closed")
            return
        attributes = paramiko.SFTPAttributes.from_stat(os.fstat(self.fd), self.name)
        try:
            self._name_it(attributes.st_size)  # still locked: never seen unheld under its temporary name
        finally:
            os.close(self.fd)
            self.fd = None
            os.close(self.dir_fd)
            self.session.quota.ended(self.session.account, self.temporary, kept=attributes.st_size)
        self.session.uploaded(self.name, attributes)

    def _name_it(self, size: int) -> None:
        log.debug("sftp_upload", account=self.session.account, original_name=self.name, size=size)
        if is_final_name(self.name):
            self.session.handoff.finish(self.session.account, self.dir_fd, self.temporary, self.name)
        else:
            os.rename(self.temporary, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)

    def _discard(self, reason: str) -> None:
        assert self.fd is not None, "only an open upload is discarded (each caller checks)"
        os.unlink(self.temporary, dir_fd=self.dir_fd)
        os.close(self.fd)
        self.fd = None
        os.close(self.dir_fd)
        self.session.quota.ended(self.session.account, self.temporary)
        log.warning("sftp_upload_discarded", account=self.session.account, original_name=self.name,
                    reason=reason)

