"""SFTP credentials: password hashes, and the check of a password or an authorized public key made at login.

Passwords are kept as scrypt hashes with their own salt and cost, so the cost can be raised later
without invalidating stored hashes. A login for an unknown account or an account without a
password is checked against a dummy hash, so that the answer takes the same time whether the
account exists or not: timing does not tell an attacker which names are valid.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os

import paramiko
from sqlalchemy.engine import Engine
from sqlmodel import select

from gateway.data.db import session_scope
from gateway.data.models import Account, AccountKey, AccountPassword
from gateway.ssh import key_text

_SCHEME = "scrypt"
_COST = {"n": 2**14, "r": 8, "p": 1}  # 16 MiB and about 70 ms per check on the reference machine
_MAXMEM = 64 * 1024 * 1024


def hash_password(password: str) -> str:
    """'scrypt$n$r$p$salt$digest', salt and digest in base64."""
    salt = os.urandom(16)
    digest = _scrypt(password.encode(), salt, **_COST)
    return "$".join([_SCHEME, *(str(_COST[k]) for k in "nrp"), _b64(salt), _b64(digest)])


def verify_password(password: str | bytes, encoded: str | None) -> bool:
    """True if password matches encoded; costs one scrypt even when encoded is None."""
    candidate = password.encode() if isinstance(password, str) else password
    scheme, n, r, p, salt, digest = (encoded or _dummy_hash()).split("$")
    if scheme != _SCHEME:
        raise ValueError(f"unknown password hash scheme {scheme!r}")
    computed = _scrypt(candidate, base64.b64decode(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(computed, base64.b64decode(digest)) and encoded is not None


class Credentials:
    """Looks up an account's credentials in the database at each login, so changes apply at once; a disabled
    account has none."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def check_password(self, account: str, password: str | bytes) -> bool:
        with session_scope(self.engine, write=False) as session:
            stored = session.exec(select(AccountPassword.hash).join(Account, Account.name == AccountPassword.account)
                                  .where(AccountPassword.account == account, Account.disabled.is_(False))).first()
        return verify_password(password, stored)

    def check_key(self, account: str, key: paramiko.PKey) -> bool:
        with session_scope(self.engine, write=False) as session:
            found = session.exec(select(AccountKey.key).join(Account, Account.name == AccountKey.account)
                                 .where(AccountKey.account == account, AccountKey.key == key_text(key),
                                        Account.disabled.is_(False))).first()
        return found is not None


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@functools.cache
def _dummy_hash() -> str:
    return hash_password(os.urandom(16).hex())
