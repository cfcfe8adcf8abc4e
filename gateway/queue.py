"""The work queue: flows waiting in state RECU, claimed by workers under a lease.

A claim is one UPDATE ... WHERE id = (SELECT ... LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING:
picking and marking are a single statement, so two workers never hold the same flow. SQLAlchemy
renders the row lock only where the database has one (PostgreSQL); on SQLite the statement runs
under BEGIN IMMEDIATE, whose write lock serialises claimers just as well. A worker that dies stops
renewing its leases; once they expire, any worker takes the flows again.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from gateway.db import session_scope
from gateway.models import Flow, FlowState, utcnow


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def claim(engine: Engine, owner: str, lease_seconds: float) -> tuple[str, int] | None:
    """Lease the oldest claimable flow to owner; return (flow id, attempts so far) or None."""
    now = utcnow()
    candidate = (
        select(Flow.id)
        .where(Flow.state == FlowState.RECU)
        .where((Flow.lease_expires_at.is_(None)) | (Flow.lease_expires_at < now))
        .order_by(Flow.received_at, Flow.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(Flow)
        .where(Flow.id == candidate)
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=Flow.attempts + 1)
        .returning(Flow.id, Flow.attempts)
    )
    with session_scope(engine) as session:
        row = session.execute(stmt).first()
    return (row[0], row[1]) if row else None


def renew(engine: Engine, owner: str, lease_seconds: float) -> int:
    """Extend every lease owner holds (its heartbeat); returns how many."""
    stmt = (
        update(Flow)
        .where(Flow.lease_owner == owner, Flow.state == FlowState.RECU)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
    )
    with session_scope(engine) as session:
        return session.execute(stmt).rowcount


def release(engine: Engine, flow_id: str, owner: str, delay: float = 0.0) -> None:
    """Give a flow back to the queue, claimable again after delay seconds."""
    stmt = (
        update(Flow)
        .where(Flow.id == flow_id, Flow.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=utcnow() + timedelta(seconds=delay))
    )
    with session_scope(engine) as session:
        session.execute(stmt)
