"""The listener: accepts connections, applies the caps and the login grace, and shuts down cleanly.

Each accepted socket gets TCP_NODELAY: SFTP is a request/response protocol of small packets, and
with Nagle's algorithm against the client's delayed acknowledgements each of them could wait
tens of milliseconds. Each connection then has a thread that closes it if it has not
authenticated within login_grace, or once it has sent no SFTP request for idle_timeout, and counts
it out of the caps when it ends.
"""

from __future__ import annotations

import socket
import threading
import time

import paramiko

from gateway import metrics
from gateway.app import App
from gateway.ingest.sftp import hostkey
from gateway.ingest.sftp.auth import Credentials
from gateway.ingest.sftp.connection import Connection, open_transport
from gateway.ingest.sftp.limits import ConnectionCaps
from gateway.throttle import FailureThrottle
from gateway.ingest.sftp.uploads import Handoff
from gateway.log import log


class SftpServer:
    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings.sftp
        self.caps = ConnectionCaps(self.settings.max_connections, self.settings.max_connections_per_ip)
        self.throttle = FailureThrottle(self.settings.auth_delay, self.settings.auth_delay_max,
                                        self.settings.ban_after, self.settings.ban_seconds)
        self.credentials = Credentials(app.engine)
        self.handoff = Handoff(app)
        self.stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._connections: dict[threading.Thread, paramiko.Transport | None] = {}
        self._lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        """Where the server listens (the port chosen by the system if the setting was 0)."""
        return self._listener.getsockname()[:2]

    def start(self) -> None:
        """Load the host key and bind before starting any thread, so a failure leaves nothing running."""
        self.host_key = hostkey.load_or_create(self.app.settings.sftp_host_key)
        self._listener = socket.create_server((self.settings.host, self.settings.port), backlog=128)
        self.handoff.start()
        self._accepting = threading.Thread(target=self._accept, name="sftp-listener", daemon=True)
        self._accepting.start()
        host, port = self.address
        log.info("sftp_started", host=host, port=port, host_key=hostkey.fingerprint(self.host_key))

    def stop(self) -> None:
        """Stop accepting, close every connection (cutting uploads short), then finish the hand-off."""
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
        self.handoff.stop()
        log.info("sftp_stopped")

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, peer = self._listener.accept()
            except OSError:  # the listener was shut down (stop), or out of descriptors for a moment
                self.stopping.wait(0.1)
                continue
            self._admit(sock, peer[0])

    def _admit(self, sock: socket.socket, ip: str) -> None:
        if self.throttle.banned(ip):
            return self._refuse(sock, ip, "banned")
        if not self.caps.acquire(ip):
            return self._refuse(sock, ip, "too many connections")
        metrics.sftp_connection("accepted")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        thread = threading.Thread(target=self._serve, args=(sock, ip), name=f"sftp-{ip}", daemon=True)
        with self._lock:
            self._connections[thread] = None
        thread.start()

    def _refuse(self, sock: socket.socket, ip: str, reason: str) -> None:
        sock.close()
        metrics.sftp_connection(reason.replace(" ", "_"))
        log.warning("sftp_connection_refused", ip=ip, reason=reason)

    def _serve(self, sock: socket.socket, ip: str) -> None:
        me = threading.current_thread()
        try:
            transport = open_transport(sock, self.host_key, self.app, self.handoff)
            with self._lock:
                self._connections[me] = transport
            if self.stopping.is_set():  # stop() may have missed this transport
                transport.close()
                return
            connection = Connection(ip, self.credentials, self.throttle, self.stopping)
            transport.start_server(event=threading.Event(), server=connection)
            self._grace(transport, ip)
            self._close_when_idle(transport, connection)
        finally:
            sock.close()
            self.caps.release(ip)
            with self._lock:
                del self._connections[me]

    def _grace(self, transport: paramiko.Transport, ip: str) -> None:
        transport.join(self.settings.login_grace)
        if transport.is_alive() and not transport.is_authenticated():
            log.warning("sftp_login_timeout", ip=ip, seconds=self.settings.login_grace)
            transport.close()

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
