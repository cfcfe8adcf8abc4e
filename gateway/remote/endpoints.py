"""Endpoints: an account's own SFTP server, written sftp://USER@HOST[:PORT]/DIR, with the gateway's private
key for it and the server's pinned host key.

Everything is checked when an operator sets an endpoint, so that a typo shows at once rather than as
deliveries dead-lettered later.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from gateway.data.db import session_scope
from gateway.data.models import Direction, Endpoint, utcnow
from gateway.remote.client import RemoteRefused, private_key
from gateway.ssh import KeyLineError, parse_key_line

DELETE, MOVE = "delete", "move:"


class EndpointError(ValueError):
    """An endpoint setting the gateway cannot use; the message says which and why."""


@dataclass(frozen=True)
class Address:
    user: str
    host: str
    port: int
    directory: str


def build(account: str, direction: Direction, url: str, key_path: Path, host_key: str, interval: float | None,
          after: str | None) -> Endpoint:
    """The endpoint an operator describes, every part checked (the private key loaded, to prove it usable)."""
    if direction is Direction.PUSH and (interval is not None or after is not None):
        raise EndpointError("--interval and --after are for a pull endpoint")
    address = parse_address(url)
    try:
        private_key(str(key_path))
    except RemoteRefused as exc:
        raise EndpointError(f"--key: {exc}") from exc
    try:
        pinned, _comment = parse_key_line(host_key)
    except KeyLineError as exc:
        raise EndpointError(f"--host-key: {exc}") from exc
    return Endpoint(account=account, direction=direction, host=address.host, port=address.port, user=address.user,
                    key_path=str(key_path.resolve()), host_key=pinned, directory=address.directory,
                    interval=interval, after=parse_after(after or DELETE, address.directory))


def parse_address(url: str) -> Address:
    """sftp://USER@HOST[:PORT]/DIR: a login without password (the gateway uses its key) and an absolute folder."""
    parts = urlsplit(url)
    try:
        port = parts.port or 22
    except ValueError as exc:
        raise EndpointError(f"{url}: {exc}") from exc
    if parts.scheme != "sftp" or not parts.hostname or not parts.username or parts.query or parts.fragment:
        raise EndpointError(f"{url}: expected sftp://USER@HOST[:PORT]/DIR")
    if parts.password is not None:
        raise EndpointError(f"{url}: no password in the address, the gateway logs in with its key (--key)")
    return Address(unquote(parts.username), parts.hostname, port, posixpath.normpath(unquote(parts.path) or "/"))


def parse_after(after: str, directory: str) -> str:
    """'delete', or 'move:DIR' into another folder of the server, a relative DIR being read from the polled
    folder (a file moved within the polled folder would be seen, and taken, again)."""
    if after == DELETE:
        return after
    folder = after.removeprefix(MOVE)
    target = posixpath.normpath(posixpath.join(directory, folder))
    if folder == after or not folder or target == directory:
        raise EndpointError(f"{after}: expected 'delete' or 'move:DIR', DIR another folder than {directory}")
    return MOVE + target


def location(endpoint: Endpoint, name: str | None = None) -> str:
    """The endpoint's folder (or a file in it) as an address, for logs, events and records."""
    path = endpoint.directory if name is None else posixpath.join(endpoint.directory, name)
    return f"sftp://{endpoint.user}@{endpoint.host}:{endpoint.port}{path}"


def find(engine: Engine, account: str, direction: Direction) -> Endpoint | None:
    with session_scope(engine) as session:
        return session.get(Endpoint, (account, direction))


def claim_pull(engine: Engine, owner: str, lease_seconds: float, due_by: datetime) -> Endpoint | None:
    """Lease to owner the pull endpoint whose poll has been due longest by due_by (a new one first), or None.

    As the work queue claims (gateway.engine.queue), in one statement: no two processes poll one endpoint at
    once, and one that dies holding it stops renewing the lease, after which another polls it.
    """
    due = (Endpoint.lease_expires_at.is_(None)) | (Endpoint.lease_expires_at <= due_by)
    candidate = (
        select(Endpoint.account)
        .where(Endpoint.direction == Direction.PULL, due)
        .order_by(Endpoint.lease_expires_at.nulls_first(), Endpoint.account)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(Endpoint)
        .where(Endpoint.direction == Direction.PULL, Endpoint.account == candidate)
        .values(lease_owner=owner, lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
        .returning(Endpoint)
    )
    with session_scope(engine) as session:
        return session.execute(stmt).scalars().first()


def release_pull(engine: Engine, endpoint: Endpoint, owner: str, next_due: datetime) -> None:
    """Give back a polled endpoint, due again at next_due for whichever process claims it then."""
    with session_scope(engine) as session:
        session.execute(update(Endpoint).where(_same(endpoint), Endpoint.lease_owner == owner)
                        .values(lease_owner=None, lease_expires_at=next_due))


def save_listing(engine: Engine, endpoint: Endpoint) -> None:
    """Keep what a poll saw, for the next poll of that endpoint, by whichever process (unless its address
    changed meanwhile: a new address starts afresh)."""
    with session_scope(engine) as session:
        session.execute(update(Endpoint).where(_same(endpoint)).values(listing=endpoint.listing))


def _same(endpoint: Endpoint):
    return ((Endpoint.account == endpoint.account) & (Endpoint.direction == endpoint.direction)
            & (Endpoint.user == endpoint.user) & (Endpoint.host == endpoint.host)
            & (Endpoint.port == endpoint.port) & (Endpoint.directory == endpoint.directory))
