"""The server's Ed25519 host key: made on first start, then kept, so clients can pin it (by its fingerprint,
gateway.ssh)."""

from __future__ import annotations

import os
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.ops.log import log


def load_or_create(path: Path) -> paramiko.Ed25519Key:
    if not path.exists():
        _create(path)
    return paramiko.Ed25519Key(filename=str(path))


def _create(path: Path) -> None:
    """Write a new key readable by the owner only, whole or not at all (two processes may race)."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # never replaces a key another process made meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    log.info("sftp_host_key_created", path=str(path))
