"""Connecting to an account's own SFTP server: its pinned host key only, the gateway's key for it, and
every failure sorted into what an operator must fix and what may pass by itself.

paramiko's SSHClient checks the server's key against a HostKeys holding the one pinned key, with a
policy that refuses any server it does not know: a key is never trusted on first use, and a changed
key is never accepted.
"""

from __future__ import annotations

import base64
import errno

import paramiko

from gateway.data.models import Endpoint
from gateway.ssh import DISABLED_ALGORITHMS, fingerprint

# SFTP answers (and local files) that no retry will change: a missing or forbidden folder or file.
_REFUSED_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM})


class RemoteError(Exception):
    """A remote SFTP server could not be used; the message names it and says why."""


class RemoteRefused(RemoteError):
    """A failure only an operator can fix: host key unknown or changed, login or key refused, private key
    unusable, folder missing or forbidden. Retrying would only repeat it."""


class RemoteUnavailable(RemoteError):
    """A failure that may pass: server unreachable or not answering in time, connection dropped."""


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """A server showing a key of another type than the pinned one is refused like one whose key changed."""

    def __init__(self, pinned: paramiko.PKey) -> None:
        self.pinned = pinned

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise paramiko.BadHostKeyException(hostname, key, self.pinned)


def connect(endpoint: Endpoint, timeout: float) -> paramiko.SSHClient:
    """A logged-in client to endpoint's server, whose host key was the pinned one."""
    key_type, blob = endpoint.host_key.split()
    pinned = paramiko.PKey.from_type_string(key_type, base64.b64decode(blob))
    client = paramiko.SSHClient()
    client.get_host_keys().add(_known_hosts_name(endpoint), key_type, pinned)
    client.set_missing_host_key_policy(_RefuseUnknown(pinned))
    try:
        client.connect(endpoint.host, endpoint.port, username=endpoint.user, pkey=private_key(endpoint.key_path),
                       look_for_keys=False, allow_agent=False, timeout=timeout, banner_timeout=timeout,
                       auth_timeout=timeout, channel_timeout=timeout, disabled_algorithms=DISABLED_ALGORITHMS)
    except BaseException:
        client.close()
        raise
    return client


def private_key(path: str) -> paramiko.PKey:
    """The gateway's private key for a server (OpenSSH or PEM file, without passphrase)."""
    try:
        return paramiko.PKey.from_path(path)
    except (OSError, ValueError, paramiko.SSHException) as exc:
        raise RemoteRefused(f"private key {path} cannot be used: {exc}") from exc


def classify(exc: BaseException, where: str) -> RemoteError | None:
    """The RemoteError that exc amounts to for the server at where, or None if it is not a remote failure."""
    if isinstance(exc, RemoteError):
        return exc
    if isinstance(exc, paramiko.BadHostKeyException):
        return RemoteRefused(f"{where}: the server shows host key {_described(exc.key)}, not the pinned "
                             f"{_described(exc.expected_key)}; if its key really changed, pin the new one")
    if isinstance(exc, (paramiko.AuthenticationException, paramiko.ssh_exception.IncompatiblePeer)):
        return RemoteRefused(f"{where}: {exc}")
    if isinstance(exc, OSError) and exc.errno in _REFUSED_ERRNOS:
        return RemoteRefused(f"{where}: {exc.strerror or exc}")
    if isinstance(exc, (OSError, EOFError, paramiko.SSHException)):
        return RemoteUnavailable(f"{where}: {exc or type(exc).__name__}")
    return None


def _known_hosts_name(endpoint: Endpoint) -> str:
    """The name paramiko looks the host key up under, as in OpenSSH's known_hosts."""
    return endpoint.host if endpoint.port == 22 else f"[{endpoint.host}]:{endpoint.port}"


def _described(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {fingerprint(key)}"
