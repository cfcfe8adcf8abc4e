"""One client connection: a hardened paramiko Transport and what its client may do.

paramiko's ServerInterface allows nothing by default but a few things; this one says so for each
request a file-exchange login must not make (shell, exec, pty, port forwarding), logging the
attempt, and allows the session channel and the sftp subsystem only.
"""

from __future__ import annotations

import threading
import time

import paramiko

from gateway import metrics
from gateway.app import App
from gateway.ingest.sftp.auth import Credentials
from gateway.ingest.sftp.fs import ZoneSession, ZoneSFTPServer
from gateway.throttle import FailureThrottle
from gateway.ingest.sftp.uploads import Handoff
from gateway.log import log

BANNER = "SSH-2.0-gateway"  # paramiko's own names it and its version
_WEAK = ("cbc", "sha1", "md5", "dss", "arcfour", "3des")


def _weak(name: str) -> bool:
    """CBC ciphers, SHA-1 and MD5 anywhere (MACs, kex, 'ssh-rsa' signatures), DSA keys."""
    return name.startswith("ssh-rsa") or any(part in name for part in _WEAK)


DISABLED_ALGORITHMS = {
    kind: [name for name in getattr(paramiko.Transport, f"_preferred_{kind}") if _weak(name)]
    for kind in ("ciphers", "macs", "keys", "pubkeys", "kex")
}


def open_transport(sock: object, host_key: paramiko.PKey, app: App, handoff: Handoff) -> paramiko.Transport:
    transport = paramiko.Transport(sock, disabled_algorithms=DISABLED_ALGORITHMS)
    transport.local_version = BANNER
    transport.add_server_key(host_key)
    transport.set_subsystem_handler("sftp", ZoneSFTPServer, ZoneSession, app, handoff)
    return transport


class Connection(paramiko.ServerInterface):
    """Authentication and channel policy of one connection from ip."""

    def __init__(self, ip: str, credentials: Credentials, throttle: FailureThrottle,
                 stopping: threading.Event) -> None:
        self.ip = ip
        self.credentials, self.throttle, self.stopping = credentials, throttle, stopping
        self.account: str | None = None
        self.method: str | None = None
        self.files = 0  # uploads opened, for max_files_per_session
        self.last_request = time.monotonic()  # or its login, for idle_timeout

    def active(self) -> None:
        self.last_request = time.monotonic()

    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password"

    def check_auth_password(self, username: str, password: str | bytes) -> int:
        if not self.throttle.banned(self.ip) and self.credentials.check_password(username, password):
            return self._granted(username, "password")
        delay = self.throttle.failed(self.ip)
        metrics.sftp_login_failed()
        log.warning("sftp_auth_failed", account=username, ip=self.ip, method="password", delay=delay,
                    banned=self.throttle.banned(self.ip))
        self.stopping.wait(delay)
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        """Asked once when the client offers the key, once more with its signature (checked by paramiko).

        A refused key is not counted as a failure: clients offer their keys in turn, and a key
        cannot be guessed the way a password can.
        """
        if not self.throttle.banned(self.ip) and self.credentials.check_key(username, key):
            return self._granted(username, "publickey")
        return paramiko.AUTH_FAILED

    def _granted(self, username: str, method: str) -> int:
        self.account, self.method = username, method
        self.active()
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return self._refused(kind, paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED)

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        if name != "sftp":
            return self._refused(f"subsystem {name}", False)
        return super().check_channel_subsystem_request(channel, name)

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        return self._refused("exec", False)

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        return self._refused("shell", False)

    def check_channel_pty_request(self, channel: paramiko.Channel, *args: object) -> bool:
        return self._refused("pty", False)

    def check_channel_direct_tcpip_request(self, chanid: int, origin: tuple, destination: tuple) -> int:
        return self._refused("direct-tcpip", paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED)

    def check_port_forward_request(self, address: str, port: int) -> bool:
        return self._refused("tcpip-forward", False)

    def _refused(self, request: str, answer: int | bool) -> int | bool:
        log.warning("sftp_request_refused", account=self.account, ip=self.ip, request=request)
        return answer
