"""API tokens: made for an account or an operator, shown once, kept as a SHA-256, revoked by id.

A token reads `gwt_<id>_<secret>`: the id finds its row (and names it in `accounts token --revoke`, in
logs), the secret (256 random bits) is compared by its digest in constant time. A random secret of that
size needs no slow hash: nobody can guess it from its digest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import select

from gateway.access.accounts import AccountError, require
from gateway.app import App
from gateway.data.db import session_scope
from gateway.data.models import Account, ApiToken, Operator, Role, as_utc, utcnow

PREFIX = "gwt_"
_ID_LENGTH = 12
_LAST_USE_PRECISION = timedelta(minutes=1)  # a token's last use is written at most once a minute


@dataclass(frozen=True)
class Holder:
    """Whom a token speaks for: an account, or an operator (who sees every account's work)."""

    token_id: str
    account: str | None
    operator: str | None
    receives: bool = False  # a recipient account's

    @property
    def name(self) -> str:
        return self.account or f"operator:{self.operator}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(app: App, account: str | None = None, operator: str | None = None) -> tuple[str, str]:
    """A new token for account (or operator); returns (its id, the token), the only time it is seen."""
    with session_scope(app.engine) as session:
        if account is not None:
            require(session, account)
        elif session.get(Operator, operator) is None:
            raise AccountError(f"no operator {operator}")
        token_id, secret = secrets.token_hex(_ID_LENGTH // 2), secrets.token_urlsafe(32)
        session.add(ApiToken(id=token_id, account=account, operator=operator, hash=_digest(secret)))
    return token_id, f"{PREFIX}{token_id}_{secret}"


def revoke(app: App, token_id: str, account: str | None = None, operator: str | None = None) -> None:
    """Revoke the holder's token token_id: from now on it is refused."""
    with session_scope(app.engine) as session:
        row = session.get(ApiToken, token_id)
        if row is None or (row.account, row.operator) != (account, operator):
            raise AccountError(f"no token {token_id} for {account or operator}", "--revoke")
        if row.revoked_at is None:
            row.revoked_at = utcnow()


def listing(app: App, account: str | None = None, operator: str | None = None) -> list[dict]:
    with session_scope(app.engine, write=False) as session:
        rows = session.exec(select(ApiToken).where(ApiToken.account == account, ApiToken.operator == operator)
                            .order_by(ApiToken.created_at)).all()
    return [row.model_dump(exclude={"hash"}) for row in rows]


def authenticate(app: App, token: str) -> Holder | None:
    """The holder of a live token, or None (unknown, malformed, revoked, or its account disabled); records its
    use."""
    if not token.startswith(PREFIX) or len(token) <= len(PREFIX) + _ID_LENGTH + 1:
        return None
    token_id, secret = token[len(PREFIX):len(PREFIX) + _ID_LENGTH], token[len(PREFIX) + _ID_LENGTH + 1:]
    with session_scope(app.engine, write=False) as session:
        row = session.get(ApiToken, token_id)
        account = session.get(Account, row.account) if row is not None and row.account is not None else None
        disabled = account is not None and account.disabled
    if row is None or row.revoked_at is not None or disabled or not hmac.compare_digest(row.hash, _digest(secret)):
        return None
    now = utcnow()
    if row.last_used_at is None or as_utc(row.last_used_at) < now - _LAST_USE_PRECISION:
        with session_scope(app.engine) as session:
            session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    return Holder(token_id, row.account, row.operator, account is not None and account.role is Role.RECIPIENT)
