"""`gateway run`: one process with the roles it is given, and a heartbeat.

The roles: `sftp`, the embedded SFTP server (run by a child process unless [sftp] own_process is false; its
uploads go through intake in this process, gateway.ingest.sftp.process); `ingest`, the
zone watcher, the pull poller and the spool recovery; `worker`, threads processing flows, with the business
rules' validator processes beside them; `deliver`, threads making due deliveries (invoices, status-returns,
notifications); `web`, the HTTP API, health and metrics (uvicorn). All five by default. Several processes, on
several hosts, may share one database and one data directory: nothing is owned by a process, every piece of
work is done under a lease (a flow, a delivery, a pull endpoint's poll, a spool entry's lock) by whoever holds
it, and taken over once a dead holder's lease expires. Idle workers are woken by work queued in any process
(gateway.engine.wakeups).

As in uvicorn, signal handlers only record; the main loop notices and stops everything in order: the web
server (requests in flight finish), the SFTP server (uploads cut short are deleted, finished ones taken), the
watcher, the poller and the recovery, then the workers, each finishing what it holds within [worker]
stop_grace, then the heartbeat, the connections to remote servers and the validator processes; the leases
still held are then released so that another process may take them at once. A thread still busy past the grace
keeps its leases: they expire, as if the process had died, rather than letting two processes work on one row.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Collection
from functools import partial

from sqlmodel import select

from gateway.app import App
from gateway.data.db import session_scope
from gateway.data.models import Account, Delivery, Flow, utcnow
from gateway.data.models import Worker as WorkerRow
from gateway.engine import queue
from gateway.engine.wakeups import Listener
from gateway.engine.worker import Worker
from gateway.ingest.intake import recover
from gateway.ingest.poller import Poller
from gateway.ingest.sftp import SftpServer
from gateway.ingest.sftp.process import SftpProcess
from gateway.ingest.watcher import ZoneWatcher
from gateway.ops import metrics
from gateway.ops.dbdown import is_database_down, log_failure
from gateway.ops.diskfull import is_disk_full
from gateway.ops.log import log
from gateway.ops.permissions import warn_if_open
from gateway.ssh import fingerprint
from gateway.validate.rules import RulesStage
from gateway.web.server import WebServer

ROLES = ("sftp", "ingest", "worker", "deliver", "web")


class Gateway:
    def __init__(self, app: App, roles: Collection[str] = ROLES) -> None:
        unknown = sorted(set(roles) - set(ROLES))
        if unknown or not roles:
            raise ValueError(f"{', '.join(unknown) or 'none given'}: the roles are {', '.join(ROLES)}")
        self.app = app
        self.roles = frozenset(roles)
        self.owner = queue.new_owner()
        self.should_exit = threading.Event()
        self._intake: list[threading.Thread] = []  # watcher, poller, recovery
        self._workers: list[threading.Thread] = []  # flows and deliveries
        self._beat: threading.Thread | None = None
        self._stop_intake = threading.Event()
        self._stop_workers = threading.Event()
        self._stop_beat = threading.Event()
        self.sftp: SftpServer | SftpProcess | None = None
        self.web: WebServer | None = None
        self._rules: RulesStage | None = None  # the stage this gateway started, and will close
        self._watcher: ZoneWatcher | None = None
        self._listener: Listener | None = None

    def handle_signal(self, signum: int, _frame) -> None:
        self.should_exit.set()

    def run(self, started: Callable[[], None] | None = None) -> None:
        """The process's life: start (then call started), wait for a signal, stop; its counters are summed with
        those of the other processes of this host (gateway.ops.metrics)."""
        metrics.multiprocess(self.app.settings.gateway.data_dir)
        previous = {s: signal.signal(s, self.handle_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            if started is not None:
                started()
            while not self.should_exit.wait(0.5):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def start(self) -> None:
        warn_if_open(self.app.settings.gateway.data_dir)
        self._register()
        if "worker" in self.roles:
            self._start_rules()
        for account in self._accounts():
            self.app.zones.ensure(account)
        recovered = recover(self.app) if "ingest" in self.roles else 0
        log.info("gateway_started", owner=self.owner, roles=sorted(self.roles), recovered=recovered,
                 zones=str(self.app.zones.root))
        if "sftp" in self.roles and self.app.settings.sftp.enabled:
            server = SftpProcess(self.app) if self.app.settings.sftp.own_process else SftpServer(self.app)
            server.start()
            self.sftp = server  # only once started: stop() must not stop a server that never ran
        if "web" in self.roles:
            web = WebServer(self.app)
            web.start()
            self.web = web
        if "ingest" in self.roles:
            self._start_ingest()
        if self.roles & {"worker", "deliver"} and Listener.needed(self.app):
            self._listener = Listener(self.app)
            self._listener.start()
        if "worker" in self.roles:
            self._start_workers("worker", self.app.settings.worker.threads, Flow)
        if "deliver" in self.roles:
            self._start_workers("deliver", self.app.settings.delivery.threads, Delivery)
        self._beat = self._spawn("heartbeat", self._heartbeat)

    def where(self) -> str:
        """One line for a person: where this process serves (SFTP address and host key fingerprint, the zones
        folder, the web address)."""
        parts = []
        if self.sftp is not None:
            host, port = self.sftp.address
            parts.append(f"SFTP {_hostport(host, port)} (host key {fingerprint(self.sftp.host_key)})")
        parts.append(f"zones {self.app.zones.root}")
        if self.web is not None:
            parts.append(f"web {'https' if self.web.tls else 'http'}://{_hostport(self.web.host, self.web.port)}/")
        return f"gateway running ({', '.join(sorted(self.roles))}): {', '.join(parts)}"

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()  # requests in flight finish: a deposit being received is taken
        if self.sftp is not None:
            self.sftp.stop()
        self._stop_intake.set()
        if self._watcher is not None:
            self._watcher.wake()  # else it sleeps until its next scan
        self._stop_workers.set()
        self.app.wakeup.set()
        deadline = time.monotonic() + self.app.settings.worker.stop_grace
        if self._listener is not None:
            self._listener.stop()  # meanwhile the workers finish what they hold
        busy = [t.name for t in self._intake + self._workers if not _joined(t, deadline)]
        self._stop_beat.set()  # only now: the leases of work being finished stay renewed until it is
        if self._beat is not None:
            self._beat.join()
        self.app.remote.close()
        if busy:
            log.warning("gateway_stop_grace_exceeded", owner=self.owner, threads=busy,
                        seconds=self.app.settings.worker.stop_grace)
        elif self._rules is not None:
            self._rules.close()
        try:
            self._unregister(release=not busy)
        except Exception as exc:  # the leases expire instead, as if the process had died
            if is_disk_full(exc):
                self.app.disk.report("stop", exc)
            elif not is_database_down(exc):
                raise
        self.app.repeats.flush()
        log.info("gateway_stopped", owner=self.owner)

    def _start_rules(self) -> None:
        """The validator processes, compiled and warm before any worker needs them, unless the app came
        with a running stage (tests share one among many gateways): that one is its owner's to close."""
        if self.app.rules is None:
            settings = self.app.settings
            # one validator a worker thread unless [validate] processes says more (a thread judges its batch's
            # documents with one thread a validator); on a 2-core machine, more processes than cores cost more than
            # they give (benchmarks/e2e.py, 2 worker processes with 2 validators each: 49 flows/s against 81)
            wanted = settings.validation.processes or min(settings.validation.pool_size, settings.worker.threads)
            rules = RulesStage.from_settings(settings.validation, processes=wanted)
            rules.start()
            self.app.rules = self._rules = rules  # only once started: stop() closes what runs

    def _start_ingest(self) -> None:
        watcher, poller = ZoneWatcher(self.app), Poller(self.app, self.owner)
        self._watcher = watcher
        self._intake.append(self._spawn("watcher", lambda: watcher.run(self._stop_intake)))
        self._intake.append(self._spawn("poller", lambda: poller.run(self._stop_intake)))
        self._intake.append(self._spawn("recovery", self._recover))

    def _start_workers(self, role: str, threads: int, model: queue.Queued) -> None:
        for n in range(threads):
            worker = Worker(self.app, self.owner, (model,))
            self._workers.append(self._spawn(f"{role}-{n}", partial(worker.run, self._stop_workers)))

    def _spawn(self, name: str, target: Callable[[], None]) -> threading.Thread:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        return thread

    def _recover(self) -> None:
        """Finish, now and then, the spool entries no live process holds: those of a process that died,
        here or on another host, are not left for its restart."""
        while not self._stop_intake.wait(self.app.settings.ingest.recover_interval):
            try:
                recovered = recover(self.app)
            except Exception:  # the entries wait for the next turn
                log_failure("recovery_failed")
                continue
            if recovered:
                log.info("spool_recovered", flows=recovered)

    def _heartbeat(self) -> None:
        period = self.app.settings.worker.lease_seconds / 3
        while not self._stop_beat.wait(period):
            try:
                queue.renew(self.app.engine, self.owner, self.app.settings.worker.lease_seconds)
                with session_scope(self.app.engine) as session:
                    session.get_one(WorkerRow, self.owner).heartbeat_at = utcnow()
            except Exception as exc:  # no room, or the database away: beat again next period, never stop
                if is_disk_full(exc):
                    self.app.disk.report("heartbeat", exc)
                elif not is_database_down(exc):
                    log.exception("heartbeat_failed")

    def _accounts(self) -> list[str]:
        with session_scope(self.app.engine, write=False) as session:
            return list(session.exec(select(Account.name)).all())

    def _register(self) -> None:
        host, pid, _ = self.owner.split(":")
        with session_scope(self.app.engine) as session:
            session.add(WorkerRow(id=self.owner, host=host, pid=int(pid), roles=",".join(sorted(self.roles))))

    def _unregister(self, release: bool) -> None:
        """Remove this process's row, giving back first (if release) every lease it still holds."""
        if release:
            queue.release_all(self.app.engine, self.owner)
        with session_scope(self.app.engine) as session:
            row = session.get(WorkerRow, self.owner)
            if row is not None:
                session.delete(row)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _joined(thread: threading.Thread, deadline: float) -> bool:
    thread.join(max(0.0, deadline - time.monotonic()))
    return not thread.is_alive()
