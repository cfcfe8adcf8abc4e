"""One client connection: a hardened paramiko Transport and what its client may do.

paramiko's ServerInterface allows nothing by default but a few things; this one says so for each
request a file-exchange login must not make (shell, exec, pty, port forwarding), logging the
attempt, and allows the session channel and the sftp subsystem only. A password is checked at the turn
gateway.access.throttle gives it, never past the connection's login deadline. Refusals and failures are told to the
app's Repeats (gateway.ops.alarm): a flood of them makes a line a minute.

A client failing before it logs in (a port scan sending no SSH banner, or another protocol's, a connection cut
during the key exchange) is the network's everyday noise, not the gateway's failure: paramiko's error lines and
traceback are left out, and the server logs one line of its own (handshake_failure).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import paramiko

from gateway.access.throttle import LOGGED_FAILURES, FailureThrottle
from gateway.app import App
from gateway.ingest.sftp.auth import Credentials
from gateway.ingest.sftp.fs import ZoneSession, ZoneSFTPServer
from gateway.ingest.sftp.limits import HandleCaps, InboxQuota
from gateway.ingest.sftp.uploads import Finisher
from gateway.ops import metrics
from gateway.ops.alarm import Repeats
from gateway.ssh import DISABLED_ALGORITHMS

BANNER = "SSH-2.0-gateway"  # paramiko's own names it and its version
_Answer = TypeVar("_Answer", int, bool)  # a refusal answers as the request expects: a code or a flag


class GatewayTransport(paramiko.Transport):
    """paramiko's Transport, setting progress once its client has logged in and once it has ended (paramiko's
    server side has no event for either)."""

    def __init__(self, sock: object, **kwargs: object) -> None:
        super().__init__(sock, **kwargs)
        self.progress = threading.Event()

    def _auth_trigger(self) -> None:
        super()._auth_trigger()
        self.progress.set()

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.progress.set()

    def _log(self, level: int, msg: object, *args: object) -> None:
        if level >= logging.ERROR and not self.authenticated and \
                isinstance(sys.exc_info()[1], (paramiko.SSHException, OSError)):
            return  # the client's failure before its login: handshake_failure() says it
        super()._log(level, msg, *args)

    def handshake_failure(self) -> tuple[str, str] | None:
        """(reason, error) if the connection ended in a failure before its client logged in, else None."""
        failure = self.saved_exception
        if self.authenticated or failure is None:
            return None
        if not self.remote_version:  # closed or cut before it, another protocol's lines instead
            reason = "no SSH banner"
        elif isinstance(failure, (EOFError, OSError)):
            reason = "closed before login"
        else:  # a banner of another version, no algorithm in common, a message out of place
            reason = "handshake failed"
        return reason, (str(failure) or type(failure).__name__)[:200]


def open_transport(sock: object, host_key: paramiko.PKey, app: App, handoff: Finisher, handles: HandleCaps,
                   quota: InboxQuota) -> GatewayTransport:
    transport = GatewayTransport(sock, disabled_algorithms=DISABLED_ALGORITHMS)
    transport.local_version = BANNER
    # paramiko's own limits on the banner and the key exchange (15 s) would end a connection before a longer
    # login grace: the server's deadline (gateway.ingest.sftp.server) closes it first
    transport.banner_timeout = transport.handshake_timeout = app.settings.sftp.login_grace + 5
    transport.add_server_key(host_key)
    transport.set_subsystem_handler("sftp", ZoneSFTPServer, ZoneSession, app, handoff, handles, quota)
    return transport


class Connection(paramiko.ServerInterface):
    """Authentication and channel policy of one connection from ip, which must log in before deadline
    (time.monotonic()); room() says whether a session is free for it."""

    def __init__(self, ip: str, credentials: Credentials, throttle: FailureThrottle, repeats: Repeats,
                 stopping: threading.Event, deadline: float, room: Callable[[], bool]) -> None:
        self.ip = ip
        self.credentials, self.throttle, self.repeats, self.stopping = credentials, throttle, repeats, stopping
        self.deadline, self.room = deadline, room
        self.account: str | None = None
        self.method: str | None = None
        self.files = 0  # uploads opened, for max_files_per_session
        self.last_request = time.monotonic()  # or its login, for idle_timeout

    def active(self) -> None:
        self.last_request = time.monotonic()

    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password"

    def check_auth_password(self, username: str, password: str | bytes) -> int:
        turn = self.throttle.turn(self.ip, username, within=self.deadline - time.monotonic())
        if turn.refused:
            self.repeats.warning("sftp_auth_refused", ("reason",), account=username, ip=self.ip, method="password",
                                 reason=turn.refused)
            return paramiko.AUTH_FAILED
        if self.stopping.wait(turn.wait):
            return paramiko.AUTH_FAILED
        if self.credentials.check_password(username, password):
            self.throttle.succeeded(turn)
            return self._granted(username, "password")
        delay = self.throttle.failed(turn)
        metrics.sftp_login_failed()
        self.repeats.warning("sftp_auth_failed", first=LOGGED_FAILURES, account=username, ip=self.ip,
                             method="password", delay=delay, locked=self.throttle.locked(self.ip, username),
                             banned=self.throttle.banned(self.ip))
        self.stopping.wait(delay)
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        """Asked once when the client offers the key, once more with its signature (checked by paramiko).

        A refused key is not counted as a failure: clients offer their keys in turn, and a key
        cannot be guessed the way a password can; nor is a key refused when only the account's passwords
        are locked from this address.
        """
        if not self.throttle.banned(self.ip) and self.credentials.check_key(username, key):
            return self._granted(username, "publickey")
        return paramiko.AUTH_FAILED

    def _granted(self, username: str, method: str) -> int:
        if not self.room():
            self.repeats.warning("sftp_login_refused", ("reason",), account=username, ip=self.ip,
                                 reason="too many sessions")
            return paramiko.AUTH_FAILED
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

    def _refused(self, request: str, answer: _Answer) -> _Answer:
        self.repeats.warning("sftp_request_refused", ("account", "request"), account=self.account, ip=self.ip,
                             request=request)
        return answer
