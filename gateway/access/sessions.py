"""Console sessions: a login with an account's password (the SFTP one) or an operator's, kept in the database.

A login gets a random cookie value (256 bits), shown to the browser only; the database keeps its SHA-256,
who it speaks for and the CSRF token of its forms. Every web process sharing the database knows every
session; logout deletes it, and a session unused for [web] session_idle seconds is deleted when next seen.
A wrong password and an unknown name are refused alike, after the same work (one scrypt per kind of user).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, update
from sqlmodel import select

from gateway.app import App
from gateway.data.db import session_scope
from gateway.data.models import Account, AccountPassword, OperatorPassword, Role, WebSession, as_utc, utcnow
from gateway.data.views import OPERATOR, Viewer
from gateway.ingest.sftp.auth import verify_password

_SEEN_PRECISION = 60.0  # seconds: a session's last use is written at most this often (and ten times per idle time)


@dataclass(frozen=True)
class Login:
    """Whom a console session speaks for: an account, or an operator."""

    id: str
    account: str | None
    operator: str | None
    csrf: str
    receives: bool = False  # a recipient account's


    @property
    def name(self) -> str:
        """The actor its changes are recorded under (as the API's tokens)."""
        return self.account or f"operator:{self.operator}"

    @property
    def viewer(self) -> Viewer:
        return Viewer(self.account, self.receives) if self.account else OPERATOR


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


def _login(row: WebSession, role: Role | None) -> Login:
    return Login(row.id, row.account, row.operator, row.csrf, role is Role.RECIPIENT)


def login(app: App, name: str, password: str) -> tuple[str, Login] | None:
    """A new session for the account (else the operator) name whose password this is: (cookie value, login);
    None otherwise, and for a disabled account. Sessions past their idle time are swept out meanwhile."""
    with session_scope(app.engine, write=False) as session:
        account, role = session.exec(select(AccountPassword, Account.role)
                                     .join(Account, Account.name == AccountPassword.account)
                                     .where(AccountPassword.account == name, Account.disabled.is_(False))
                                     ).first() or (None, None)
        operator = session.get(OperatorPassword, name)
    as_account = verify_password(password, account.hash if account else None)
    as_operator = verify_password(password, operator.hash if operator else None)
    if not (as_account or as_operator):
        return None
    cookie = secrets.token_urlsafe(32)
    row = WebSession(id=_digest(cookie), account=name if as_account else None,
                     operator=None if as_account else name, csrf=secrets.token_urlsafe(32))
    with session_scope(app.engine) as session:
        session.execute(delete(WebSession).where(WebSession.last_seen_at < utcnow() - _idle(app)))
        session.add(row)
    return cookie, _login(row, role if as_account else None)


def resume(app: App, cookie: str) -> Login | None:
    """The live session of a cookie value, its use recorded; None for an unknown, ended or expired one."""
    digest, now = _digest(cookie), utcnow()
    with session_scope(app.engine, write=False) as session:
        row = session.get(WebSession, digest)
        account = session.get(Account, row.account) if row is not None and row.account else None
    if row is None:
        return None
    seen = as_utc(row.last_seen_at)
    if seen < now - _idle(app):
        logout(app, cookie)
        return None
    if seen < now - min(timedelta(seconds=_SEEN_PRECISION), _idle(app) / 10):
        with session_scope(app.engine) as session:
            session.execute(update(WebSession).where(WebSession.id == digest).values(last_seen_at=now))
    return _login(row, account.role if account else None)


def logout(app: App, cookie: str) -> None:
    """End the session of a cookie value: from now on it is refused."""
    with session_scope(app.engine) as session:
        session.execute(delete(WebSession).where(WebSession.id == _digest(cookie)))


def _idle(app: App) -> timedelta:
    return timedelta(seconds=app.settings.web.session_idle)
