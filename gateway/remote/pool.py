"""One open SFTP session per remote server, reused by every delivery and poll that goes there.

Opening an SSH connection costs a TCP handshake, a key exchange and a login, and servers throttle
clients that reconnect for every file. Each session is used by one thread at a time (its lock), is
reopened when its transport has died, and is dropped after any failure so the next use starts afresh.
Failures leave the pool as RemoteRefused or RemoteUnavailable (gateway.remote.client).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import paramiko

from gateway.data.models import Endpoint
from gateway.ops.log import log
from gateway.remote.client import classify, connect
from gateway.remote.endpoints import location

_Key = tuple[str, int, str, str, str]


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: paramiko.SSHClient | None = None
    sftp: paramiko.SFTPClient | None = None

    def alive(self) -> bool:
        transport = self.client.get_transport() if self.client else None
        return transport is not None and transport.is_active()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = self.sftp = None


class SftpPool:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._slots: dict[_Key, _Slot] = {}
        self._lock = threading.Lock()

    @contextmanager
    def session(self, endpoint: Endpoint) -> Iterator[paramiko.SFTPClient]:
        """The SFTP session to endpoint's server, for this thread alone until the block ends."""
        slot = self._slot(endpoint)
        with slot.lock:
            try:
                yield self._open(slot, endpoint)
            except Exception as exc:  # the session is dropped whatever failed; classify says what to raise
                slot.close()
                error = classify(exc, location(endpoint))
                if error is None or error is exc:
                    raise
                raise error from exc

    def close(self) -> None:
        """Close every session (at shutdown, once no thread uses them)."""
        with self._lock:
            slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            slot.close()

    def _slot(self, endpoint: Endpoint) -> _Slot:
        """Sessions are keyed by everything that makes a login, so a changed endpoint gets a new one."""
        key = (endpoint.host, endpoint.port, endpoint.user, endpoint.key_path, endpoint.host_key)
        with self._lock:
            return self._slots.setdefault(key, _Slot())

    def _open(self, slot: _Slot, endpoint: Endpoint) -> paramiko.SFTPClient:
        if slot.alive():
            return slot.sftp
        slot.close()
        slot.client = connect(endpoint, self.timeout)
        slot.sftp = slot.client.open_sftp()
        slot.sftp.get_channel().settimeout(self.timeout)
        log.info("remote_connected", remote=f"{endpoint.user}@{endpoint.host}:{endpoint.port}",
                 account=endpoint.account)
        return slot.sftp
