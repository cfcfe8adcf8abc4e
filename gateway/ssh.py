"""What the gateway holds to in SSH, as the embedded SFTP server (gateway.ingest.sftp) and as the client of
accounts' own servers (gateway.remote) alike: the algorithms it refuses, public keys as authorized_keys lines, and
their fingerprints.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import paramiko

_WEAK = ("cbc", "sha1", "md5", "dss", "arcfour", "3des")


def _weak(name: str) -> bool:
    """CBC ciphers, SHA-1 and MD5 anywhere (MACs, kex, 'ssh-rsa' signatures), DSA keys.

    >>> [name for name in ("aes256-ctr", "aes128-cbc", "hmac-sha1", "rsa-sha2-512", "ssh-rsa") if _weak(name)]
    ['aes128-cbc', 'hmac-sha1', 'ssh-rsa']
    """
    return name.startswith("ssh-rsa") or any(part in name for part in _WEAK)


# paramiko's disabled_algorithms, for its Transport (server) and SSHClient (client)
DISABLED_ALGORITHMS = {
    kind: [name for name in getattr(paramiko.Transport, f"_preferred_{kind}") if _weak(name)]
    for kind in ("ciphers", "macs", "keys", "pubkeys", "kex")
}


class KeyLineError(ValueError):
    """An authorized_keys line the gateway cannot use."""


def parse_key_line(line: str) -> tuple[str, str]:
    """One authorized_keys line -> (key as compared at login, comment).

    Lines with options (from=, command=...) are refused rather than accepted without their
    restrictions, which would grant more than their author meant.
    """
    fields = line.split(maxsplit=2)
    if len(fields) < 2:
        raise KeyLineError("expected '<type> <base64 key> [comment]'")
    try:
        key = paramiko.PKey.from_type_string(fields[0], base64.b64decode(fields[1], validate=True))
    except (binascii.Error, paramiko.SSHException, paramiko.pkey.UnknownKeyType, ValueError) as exc:
        raise KeyLineError(f"not a public key this server accepts ({fields[0][:40]}): {exc}") from exc
    return key_text(key), fields[2].strip() if len(fields) > 2 else ""


def key_text(key: paramiko.PKey) -> str:
    """'<type> <base64>': the key as an authorized_keys line gives it, without its comment."""
    return f"{key.get_name()} {key.get_base64()}"


def fingerprint(key: paramiko.PKey) -> str:
    """The form `ssh-keygen -l` and the OpenSSH client print: SHA256:<base64, unpadded>."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
