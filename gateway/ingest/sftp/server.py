"""The listener: accepts connections, applies the caps and the login grace, and shuts down cleanly.

A connection is refused at accept when its address is banned (gateway.access.throttle) or penalised, or by the
startup caps (gateway.ingest.sftp.limits). Each accepted socket gets TCP_NODELAY: SFTP is a
request/response protocol of small packets, and with Nagle's algorithm against the client's delayed
acknowledgements each of them could wait tens of milliseconds. Each connection then has a thread that
closes it if it has not logged in within login_grace of its accept (penalising its address), or once it has
sent no SFTP request for idle_timeout, and counts it out of the caps when it ends. Refusals, timeouts and
failed handshakes are told to the app's Repeats (gateway.ops.alarm): a flood of them makes a line a minute per
kind, not one per connection.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
import time

import paramiko

from gateway.access.throttle import FailureThrottle
from gateway.app import App
from gateway.ingest.sftp import hostkey
from gateway.ingest.sftp.auth import Credentials
from gateway.ingest.sftp.connection import Connection, GatewayTransport, open_transport
from gateway.ingest.sftp.limits import ConnectionCaps, HandleCaps, InboxQuota, Refused, Slot
from gateway.ingest.sftp.uploads import Finisher, Handoff, sweep
from gateway.ops import metrics
from gateway.ops.log import log
from gateway.ssh import fingerprint


class SftpServer:
    """Serves the zones on listener (bound at start from the settings if not given); finished uploads go to
    finisher (a Handoff of its own to this process's intake if not given)."""

    def __init__(self, app: App, finisher: Finisher | None = None, listener: socket.socket | None = None) -> None:
        self.app = app
        self.settings = app.settings.sftp
        self.caps = ConnectionCaps(self.settings)
        self.handles = HandleCaps(self.settings.max_open_handles, self.settings.max_open_handles_per_account)
        self.quota = InboxQuota(self.settings.inbox_max_bytes, self.settings.inbox_max_files)
        self.throttle = FailureThrottle.of(app.engine, self.settings)
        self.credentials = Credentials(app.engine)
        self._handoff: Handoff | None = None  # a hand-off of this server's own, to start and stop with it
        if finisher is None:
            finisher = self._handoff = Handoff(app)
        self.handoff = finisher
        self.stopping = threading.Event()
        self._listener = listener
        self._accepting: threading.Thread | None = None
        self._connections: dict[threading.Thread, paramiko.Transport | None] = {}
        self._lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        """Where the server listens (the port chosen by the system if the setting was 0)."""
        assert self._listener is not None, "the server listens once started"
        return self._listener.getsockname()[:2]

    def start(self) -> None:
        """Load the host key and bind before starting any thread, so a failure leaves nothing running."""
        self.host_key = hostkey.load_or_create(self.app.settings.sftp_host_key)
        if self._listener is None:
            self._listener = listen(self.settings.host, self.settings.port)
        sweep(self.app)
        if self._handoff is not None:
            self._handoff.start()
        self._accepting = threading.Thread(target=self._accept, name="sftp-listener", daemon=True)
        self._accepting.start()
        host, port = self.address
        log.info("sftp_started", host=host, port=port, host_key=fingerprint(self.host_key))

    def stop(self) -> None:
        """Stop accepting, close every connection (cutting uploads short), then finish the hand-off."""
        assert self._listener is not None and self._accepting is not None, "stop() follows start()"
        self.stopping.set()
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._listener.close()
        self._accepting.join()
        with self._lock:
            connections = dict(self._connections)
        for transport in connections.values():
            if transport is not None:
                transport.close()
        for thread in connections:
            thread.join()
        if self._handoff is not None:
            self._handoff.stop()
        log.info("sftp_stopped")

    def _accept(self) -> None:
        listener = self._listener
        assert listener is not None, "started by start(), once the listener is bound"
        while not self.stopping.is_set():
            try:
                sock, peer = listener.accept()
            except OSError:  # the listener was shut down (stop), or out of descriptors for a moment
                self.stopping.wait(0.1)
                continue
            self._admit(sock, peer[0])

    def _admit(self, sock: socket.socket, ip: str) -> None:
        if self.throttle.banned(ip):
            return self._refuse(sock, ip, "banned")
        try:
            slot, evicted = self.caps.admit(ip, functools.partial(_cut, sock))
        except Refused as refused:
            return self._refuse(sock, ip, str(refused))
        if evicted is not None:
            metrics.sftp_connection("startup_closed")
            self.app.repeats.warning("sftp_startup_closed", ip=evicted.ip, reason="startups full, for a connection "
                                     "from an address holding none")
        metrics.sftp_connection("accepted")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        thread = threading.Thread(target=self._serve, args=(sock, slot), name=f"sftp-{ip}", daemon=True)
        with self._lock:
            self._connections[thread] = None
        thread.start()

    def _refuse(self, sock: socket.socket, ip: str, reason: str) -> None:
        sock.close()
        metrics.sftp_connection(reason.replace(" ", "_"))
        self.app.repeats.warning("sftp_connection_refused", ("reason",), ip=ip, reason=reason)

    def _serve(self, sock: socket.socket, slot: Slot) -> None:
        me = threading.current_thread()
        deadline = slot.since + self.settings.login_grace
        try:
            transport = open_transport(sock, self.host_key, self.app, self.handoff, self.handles, self.quota)
            with self._lock:
                self._connections[me] = transport
            if self.stopping.is_set():  # stop() may have missed this transport
                transport.close()
                return
            connection = Connection(slot.ip, self.credentials, self.throttle, self.app.repeats, self.stopping,
                                    deadline, functools.partial(self.caps.room, slot.ip))
            transport.start_server(event=threading.Event(), server=connection)
            if self._logged_in(transport, slot, deadline):
                self._close_when_idle(transport, connection)
        finally:
            sock.close()
            self.caps.release(slot)
            with self._lock:
                del self._connections[me]

    def _logged_in(self, transport: GatewayTransport, slot: Slot, deadline: float) -> bool:
        """Wait for the login until deadline; True once it is counted as a session. A connection still not
        logged in at the deadline is closed, and its address penalised."""
        ended_or_in = transport.progress.wait(max(0.0, deadline - time.monotonic()))
        if transport.is_authenticated():
            if self.caps.logged_in(slot):
                return True
            self.app.repeats.warning("sftp_login_refused", ("reason",), account=transport.get_username(), ip=slot.ip,
                                     reason="too many sessions")
        elif not ended_or_in:
            self.app.repeats.warning("sftp_login_timeout", ip=slot.ip, seconds=self.settings.login_grace,
                                     penalty=round(self.caps.penalise(slot.ip), 1))
        elif (failure := transport.handshake_failure()) and not slot.released and not self.stopping.is_set():
            reason, error = failure  # not the server's own cut (an evicted startup, a stop)
            self.app.repeats.info("sftp_handshake_failed", ("reason",), ip=slot.ip, reason=reason, error=error)
        transport.close()
        return False

    def _close_when_idle(self, transport: paramiko.Transport, connection: Connection) -> None:
        """Wait for the connection to end, closing it once idle_timeout has passed since its last request."""
        limit = self.settings.idle_timeout
        while transport.is_alive():
            idle = time.monotonic() - connection.last_request
            if idle >= limit:
                log.info("sftp_idle_timeout", account=connection.account, ip=connection.ip, seconds=limit)
                transport.close()
                return
            transport.join(limit - idle)


def listen(host: str, port: int) -> socket.socket:
    return socket.create_server((host, port), backlog=128)


def _cut(sock: socket.socket) -> None:
    """End a connection from another thread: its transport's reads fail, and it ends."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
