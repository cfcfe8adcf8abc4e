"""Accounts and operators: what `gateway accounts ...` and `gateway operators ...` do, and the API with them.

An account is a supplier or a recipient with its zone, its SIRETs, its SFTP login (password, keys) and
optionally its own SFTP server (an endpoint). An operator runs the gateway: it holds API tokens and a console
password.
Every check is made before anything is written; a refusal is an AccountError naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import delete
from sqlmodel import select
from stdnum.fr import siret as siret_number

from gateway.app import App
from gateway.data.db import session_scope
from gateway.data.models import (
    Account,
    AccountKey,
    AccountPassword,
    AccountSiret,
    Direction,
    Endpoint,
    Operator,
    OperatorPassword,
    Role,
    StatusFormat,
    WebSession,
)
from gateway.zones import is_account_name


class AccountError(ValueError):
    """A request about an account that cannot be done; field names what was wrong (for the CLI's hint)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class AccountExists(AccountError):
    """The name is an existing account's, and the caller asked to create one (not to update it)."""


class SiretHeld(AccountError):
    """A SIRET another account holds, and the caller did not ask for it to be shared."""


def check_name(name: str, field: str = "NAME") -> None:
    if not is_account_name(name):
        raise AccountError("letters, digits, '-' and '_' only", field)


def add(app: App, name: str, role: Role, sirets: Iterable[str] = (), password: str | None = None,
        keys: Iterable[tuple[str, str]] = (), status_format: StatusFormat | None = None, new: bool = False,
        shared: bool = False) -> Path:
    """Create or update an account (new: only create it, AccountExists otherwise), its SIRETs, its SFTP
    credentials and its zone; returns the zone. A SIRET another account holds is refused (SiretHeld) unless
    shared: two accounts then hold it, as `accounts list` shows.

    keys are (key, comment) pairs as gateway.ssh.parse_key_line gives them."""
    check_name(name)
    compact = []
    for siret in sirets:
        if not siret_number.is_valid(siret):
            raise AccountError(f"{siret!r} is not a valid SIRET (14 digits, Luhn)", "--siret")
        compact.append(siret_number.compact(siret))
    if password is not None and not password:
        raise AccountError("empty password", "--password")
    with session_scope(app.engine) as session:
        account = session.get(Account, name)
        if account is not None and new:
            raise AccountExists(f"account {name} exists already ({account.role.value})", "NAME")
        if not shared:
            _refuse_held(session, name, compact)
        account = account or Account(name=name, role=role)
        account.role = role
        if status_format:
            account.status_format = status_format
        session.add(account)
        session.flush()
        for siret in compact:
            if session.get(AccountSiret, (name, siret)) is None:
                session.add(AccountSiret(account=name, siret=siret))
        if password is not None:
            session.merge(AccountPassword(account=name, hash=_hash(password)))
        for key, comment in keys:
            session.merge(AccountKey(account=name, key=key, comment=comment))
    app.zones.ensure(name)
    return app.zones.zone(name)


def _hash(password: str) -> str:
    """The stored form of a password, made as the SFTP server checks it (imported only when one is set: the
    server's package costs a command that sets none its start-up time)."""
    from gateway.ingest.sftp.auth import hash_password

    return hash_password(password)


def _refuse_held(session, name: str, sirets: list[str]) -> None:
    """SiretHeld for the first of sirets, not held by name yet, that another account holds."""
    sirets = [siret for siret in sirets if session.get(AccountSiret, (name, siret)) is None]
    if not sirets:
        return
    held = session.exec(select(AccountSiret).where(AccountSiret.siret.in_(sirets), AccountSiret.account != name)
                        .order_by(AccountSiret.siret, AccountSiret.account)).all()
    if held:
        siret = held[0].siret
        others = ", ".join(h.account for h in held if h.siret == siret)
        raise SiretHeld(f"SIRET {siret} is held by account {others} already", "--siret")


def require(session, name: str) -> Account:
    account = session.get(Account, name)
    if account is None:
        raise AccountError(f"no account {name}")
    return account


def disable(app: App, name: str, disabled: bool = True) -> None:
    """Refuse (or, disabled False, allow again) every login of the account, over SFTP, the console and the
    API; its console sessions end at once. Its flows, invoices and deliveries go on as before."""
    with session_scope(app.engine) as session:
        require(session, name).disabled = disabled
        if disabled:
            session.execute(delete(WebSession).where(WebSession.account == name))


def set_endpoint(app: App, name: str, direction: Direction, url: str, key_path: Path, host_key: str,
                 interval: float | None = None, after: str | None = None) -> Endpoint:
    """Set the account's own SFTP server for direction (every part checked: gateway.remote.endpoints)."""
    from gateway.remote.endpoints import EndpointError, build  # here for start-up time: paramiko

    with session_scope(app.engine) as session:
        require(session, name)
        try:
            endpoint = build(name, direction, url, key_path, host_key, interval, after)
        except EndpointError as exc:
            raise AccountError(str(exc)) from exc
        session.merge(endpoint)
    return endpoint


def remove_endpoint(app: App, name: str, direction: Direction) -> None:
    with session_scope(app.engine) as session:
        require(session, name)
        endpoint = session.get(Endpoint, (name, direction))
        if endpoint is None:
            raise AccountError(f"account {name} has no {direction.value} endpoint")
        session.delete(endpoint)


def listing(app: App) -> list[dict]:
    """Every account with its SIRETs (shared: those other accounts hold too, and which) and its own SFTP servers."""
    from gateway.remote.endpoints import location  # here for start-up time: paramiko

    with session_scope(app.engine, write=False) as session:
        rows = session.exec(select(Account).order_by(Account.name)).all()
        sirets = session.exec(select(AccountSiret)).all()
        remotes = session.exec(select(Endpoint).order_by(Endpoint.direction)).all()
    held: dict[str, list[str]] = {}
    holders: dict[str, list[str]] = {}
    servers: dict[str, list[str]] = {}
    for s in sirets:
        held.setdefault(s.account, []).append(s.siret)
        holders.setdefault(s.siret, []).append(s.account)
    for e in remotes:
        servers.setdefault(e.account, []).append(f"{e.direction.value} {location(e)}")
    return [{"name": a.name, "role": a.role.value, "status_format": a.status_format.value, "disabled": a.disabled,
             "created_at": a.created_at, "sirets": held.get(a.name, []), "remote": servers.get(a.name, []),
             "shared": {siret: sorted(set(holders[siret]) - {a.name}) for siret in held.get(a.name, [])
                        if len(holders[siret]) > 1}}
            for a in rows]


def add_operator(app: App, name: str, password: str | None = None) -> None:
    """Create an operator (nothing changes if it exists), or set its console password."""
    check_name(name)
    if password is not None and not password:
        raise AccountError("empty password", "--password")
    with session_scope(app.engine) as session:
        if session.get(Operator, name) is None:
            session.add(Operator(name=name))
            session.flush()
        if password is not None:
            session.merge(OperatorPassword(operator=name, hash=_hash(password)))
