"""`gateway run`: one process running the SFTP server, the zone watcher, the pull poller, the workers and a
heartbeat, with the business rules' validator processes beside it.

As in uvicorn, signal handlers only record; the main loop notices and stops everything in order:
the SFTP server, the watcher and the poller first (no new flows), then the workers, each finishing the
flow in hand, then the connections to remote servers and the validator processes, then the leases still
held are released so another process may take them at once.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

from sqlmodel import select

from gateway import queue
from gateway.app import App
from gateway.db import session_scope
from gateway.ingest.intake import recover
from gateway.ingest.poller import Poller
from gateway.ingest.sftp import SftpServer
from gateway.ingest.watcher import ZoneWatcher
from gateway.log import log
from gateway.models import Account, Worker as WorkerRow, utcnow
from gateway.validate.rules import RulesStage
from gateway.worker import Worker


class Gateway:
    def __init__(self, app: App) -> None:
        self.app = app
        self.owner = queue.new_owner()
        self.should_exit = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stop_workers = threading.Event()
        self._stop_watcher = threading.Event()
        self.sftp: SftpServer | None = None
        self._rules: RulesStage | None = None  # the stage this gateway started, and will close

    def handle_signal(self, signum: int, _frame) -> None:
        self.should_exit.set()

    def run(self) -> None:
        previous = {s: signal.signal(s, self.handle_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not self.should_exit.wait(0.5):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def start(self) -> None:
        self._register()
        self._start_rules()
        for account in self._accounts():
            self.app.zones.ensure(account)
        recovered = recover(self.app)
        log.info("gateway_started", owner=self.owner, recovered=recovered,
                 workers=self.app.settings.worker.threads, zones=str(self.app.zones.root))
        if self.app.settings.sftp.enabled:
            server = SftpServer(self.app)
            server.start()
            self.sftp = server  # only once started: stop() must not stop a server that never ran
        watcher = ZoneWatcher(self.app)
        self._spawn("watcher", lambda: watcher.run(self._stop_watcher))
        poller = Poller(self.app)
        self._spawn("poller", lambda: poller.run(self._stop_watcher))
        for n in range(self.app.settings.worker.threads):
            worker = Worker(self.app, self.owner)
            self._spawn(f"worker-{n}", lambda w=worker: w.run(self._stop_workers))
        self._spawn("heartbeat", self._heartbeat)

    def stop(self) -> None:
        if self.sftp is not None:
            self.sftp.stop()
        self._stop_watcher.set()
        self._stop_workers.set()
        self.app.wakeup.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self.app.remote.close()
        if self._rules is not None:
            self._rules.close()
        self._release_all()
        log.info("gateway_stopped", owner=self.owner)

    def _start_rules(self) -> None:
        """The validator processes, compiled and warm before any worker needs them, unless the app came
        with a running stage (tests share one among many gateways): that one is its owner's to close."""
        if self.app.rules is None:
            rules = RulesStage.from_settings(self.app.settings.validation)
            rules.start()
            self.app.rules = self._rules = rules  # only once started: stop() closes what runs

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _heartbeat(self) -> None:
        period = self.app.settings.worker.lease_seconds / 3
        while not self._stop_workers.wait(period):
            queue.renew(self.app.engine, self.owner, self.app.settings.worker.lease_seconds)
            with session_scope(self.app.engine) as session:
                session.get(WorkerRow, self.owner).heartbeat_at = utcnow()

    def _accounts(self) -> list[str]:
        with session_scope(self.app.engine) as session:
            return list(session.exec(select(Account.name)).all())

    def _register(self) -> None:
        host, pid, _ = self.owner.split(":")
        with session_scope(self.app.engine) as session:
            session.add(WorkerRow(id=self.owner, host=host, pid=int(pid)))

    def _release_all(self) -> None:
        queue.release_all(self.app.engine, self.owner)
        with session_scope(self.app.engine) as session:
            row = session.get(WorkerRow, self.owner)
            if row is not None:
                session.delete(row)
