"""The SFTP server in a process of its own ([sftp] own_process, the default).

An SFTP session is answered in Python (paramiko's transport and request threads), and sharing the interpreter
lock with the workers, intake and the web server made an upload session several times slower than with OpenSSH's
sshd (benchmarks/sftp.py). So `gateway run` starts the server in a child process (multiprocessing's spawn): the
child serves the zones, writes the uploads and names the finished ones in in/ (gateway.ingest.sftp.uploads), and
tells this process each final name over a pipe; this process's Handoff takes them to intake in batches, as it
takes those of a server of its own. A file named in in/ is safe whatever becomes of either process: the zone
watcher takes the files no one handed over.

The listening socket is bound here before the child starts, and inherited by it (as uvicorn does for its
workers): the address is known at once, a port of 0 works, and a child started again serves the same socket.
The child ignores SIGINT and SIGTERM, which a terminal or a service manager also sends it: this process stops
it (the child closes its connections, cutting uploads short, tells the last names, and exits). If this process
dies, the child sees the pipe close and stops the same way. If the child dies, it is started again after
RESTART seconds.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import socket
import threading
from multiprocessing.connection import Connection

from gateway.app import App
from gateway.config import Settings
from gateway.ingest.sftp import hostkey
from gateway.ingest.sftp.server import SftpServer, listen
from gateway.ingest.sftp.uploads import Handoff, name_final
from gateway.ops import metrics
from gateway.ops.log import configure_logging, log

_SPAWN = multiprocessing.get_context("spawn")  # a fork would copy this process's threads' locks, held or not
STARTED, STOP = "started", "stop"


class SftpProcess:
    """The SFTP server of this gateway, run by a child process; its uploads taken to intake here."""

    RESTART = 1.0  # seconds before a child that died is started again
    START_TIMEOUT = 120.0  # seconds a child may take to import, open the database and listen

    def __init__(self, app: App) -> None:
        self.app = app
        self.handoff = Handoff(app)
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the child and its pipe, replaced when it is started again
        self._listener: socket.socket | None = None
        self._child: multiprocessing.process.BaseProcess | None = None
        self._pipe: Connection | None = None
        self._reader: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self._listener is not None, "the server listens once started"
        return self._listener.getsockname()[:2]

    def start(self) -> None:
        self.host_key = hostkey.load_or_create(self.app.settings.sftp_host_key)  # made here, once, not by the child
        self._listener = listen(self.app.settings.sftp.host, self.app.settings.sftp.port)
        try:
            self._spawn()
        except BaseException:
            self._listener.close()
            raise
        self.handoff.start()
        self._reader = threading.Thread(target=self._read, name="sftp-process", daemon=True)
        self._reader.start()

    def stop(self) -> None:
        """Stop the child, take the names it told, then stop the hand-off (which takes what is queued)."""
        assert self._reader is not None and self._listener is not None, "stop() follows start()"
        self._stopping.set()
        with self._lock:
            self._tell_stop()
        self._reader.join()  # until the child's pipe closes: every name it told is queued
        if self._child is not None:
            self._child.join()
        self._listener.close()
        self.handoff.stop()

    def _spawn(self) -> None:
        ours, theirs = _SPAWN.Pipe()
        child = _SPAWN.Process(target=serve, args=(self.app.settings, self._listener, theirs), name="gateway-sftp")
        child.start()
        theirs.close()
        try:
            started = ours.poll(self.START_TIMEOUT) and ours.recv() == STARTED
        except EOFError:
            started = False
        if not started:
            child.kill()
            child.join()
            ours.close()
            raise RuntimeError(f"the SFTP server's process did not start (exit code {child.exitcode})")
        log.info("sftp_process_started", pid=child.pid)
        with self._lock:
            self._child, self._pipe = child, ours
            if self._stopping.is_set():  # stop() told the one before
                self._tell_stop()

    def _tell_stop(self) -> None:
        if self._pipe is not None:
            with contextlib.suppress(OSError):  # a child that died: the reader starts none again
                self._pipe.send(STOP)

    def _read(self) -> None:
        """Queue the names the child tells; start it again if it dies, until stopped."""
        while True:
            assert self._pipe is not None and self._child is not None, "started by start()"
            try:
                account, name = self._pipe.recv()
            except EOFError:
                self._child.join()
                self._pipe.close()
                if self._stopping.is_set():
                    return
                log.error("sftp_process_died", pid=self._child.pid, exit_code=self._child.exitcode)
                if not self._restart():
                    return
                continue
            self.handoff.take(account, name)

    def _restart(self) -> bool:
        """Start the child again, retrying every RESTART seconds; False once stopping."""
        while not self._stopping.wait(self.RESTART):
            try:
                self._spawn()
                return True
            except Exception:
                log.exception("sftp_process_start_failed")
        return False


class Forward:
    """The child's finisher: names a finished upload in in/, then tells the parent its name."""

    def __init__(self, app: App, pipe: Connection) -> None:
        self.app, self._pipe = app, pipe
        self._lock = threading.Lock()  # the sessions' threads share the pipe

    def finish(self, account: str, dir_fd: int, source: str, name: str) -> None:
        if not name_final(self.app, account, dir_fd, source, name):
            return
        try:
            with self._lock:
                self._pipe.send((account, name))
        except OSError:  # the parent is gone: the file waits in in/ for a zone watcher
            log.warning("sftp_upload_not_handed", account=account, original_name=name, reason="the gateway stopped")


def serve(settings: Settings, listener: socket.socket, pipe: Connection) -> None:
    """The child: serve the zones on listener until told to stop, or until the parent is gone."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    configure_logging(settings.log.level, settings.log.file)
    metrics.multiprocess(settings.gateway.data_dir)
    app = App.from_settings(settings)
    server = SftpServer(app, Forward(app, pipe), listener)
    server.start()
    pipe.send(STARTED)
    with contextlib.suppress(EOFError):
        pipe.recv()  # STOP, or the end of the pipe when the parent died
    server.stop()
    app.repeats.flush()
    app.engine.dispose()
