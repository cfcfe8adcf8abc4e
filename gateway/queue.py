"""The work queue: rows waiting in the database (flows to process, deliveries to make), claimed under a lease.

A claim is one UPDATE ... WHERE id = (SELECT ... LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING:
picking and marking are a single statement, so two workers never hold the same row. SQLAlchemy
renders the row lock only where the database has one (PostgreSQL); on SQLite the statement runs
under BEGIN IMMEDIATE, whose write lock serialises claimers just as well. A worker that dies stops
renewing its leases; once they expire, any worker takes the rows again.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gateway.db import session_scope
from gateway.models import Delivery, DeliveryState, Endpoint, Flow, FlowState, utcnow

Queued = type[Flow] | type[Delivery]
_LEASED = (Flow, Delivery, Endpoint)  # what a process's heartbeat renews and a graceful stop gives back


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _ready(model: Queued, now) -> list[Any]:
    """What makes a row claimable, besides an expired or absent lease."""
    if model is Flow:
        return [Flow.state == FlowState.RECU]
    return [Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now]


def _unattended(model: Queued) -> list[Any]:
    """The deliveries of a flow still RECU belong to the worker processing it (pipeline.process makes them,
    and takes back those a crash or a full disk left): the queue leaves them alone, since two attempts at
    once would deliver a file twice."""
    if model is Flow:
        return []
    in_process = select(Flow.id).where(Flow.id == Delivery.flow_id, Flow.state == FlowState.RECU).exists()
    return [~in_process]


def claim(engine: Engine, owner: str, lease_seconds: float, model: Queued = Flow) -> tuple[Any, int] | None:
    """Lease the oldest claimable row of model to owner; return (its id, attempts so far) or None.

    An idle worker looks before it claims: the look takes no write lock, so polling an empty queue does
    not hold up the processes that have work to record."""
    now = utcnow()
    candidate = (
        select(model.id)
        .where(*_ready(model, now), *_unattended(model))
        .where((model.lease_expires_at.is_(None)) | (model.lease_expires_at < now))
        .order_by(model.id)
        .limit(1)
    )
    with session_scope(engine, write=False) as session:
        if session.execute(candidate).first() is None:
            return None
    candidate = candidate.with_for_update(skip_locked=True).scalar_subquery()
    stmt = (
        update(model)
        .where(model.id == candidate)
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=model.attempts + 1)
        .returning(model.id, model.attempts)
    )
    with session_scope(engine) as session:
        row = session.execute(stmt).first()
    return (row[0], row[1]) if row else None


def lease_deliveries(session: Session, owner: str, lease_seconds: float, flow_id: str) -> list[int]:
    """Lease to owner every delivery of flow_id that is due and free, in the order they were made.

    The worker that has just judged a flow takes the status-returns it queued (and any other due
    delivery of that flow) at once, instead of leaving each to a later claim; in the caller's transaction,
    which may have just made some of them.
    """
    now = utcnow()
    free = (Delivery.lease_expires_at.is_(None)) | (Delivery.lease_expires_at < now)
    stmt = (
        update(Delivery)
        .where(Delivery.flow_id == flow_id, *_ready(Delivery, now), free)
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=Delivery.attempts + 1)
        .returning(Delivery.id)
    )
    session.flush()
    return sorted(session.execute(stmt, execution_options={"synchronize_session": False}).scalars())


def renew(engine: Engine, owner: str, lease_seconds: float) -> None:
    """Extend every lease owner holds (its heartbeat)."""
    expires = utcnow() + timedelta(seconds=lease_seconds)
    with session_scope(engine) as session:
        for model in _LEASED:
            session.execute(update(model).where(model.lease_owner == owner).values(lease_expires_at=expires))


def release(engine: Engine, row_id: Any, owner: str, delay: float = 0.0, model: Queued = Flow) -> None:
    """Give a row back to the queue, claimable again after delay seconds."""
    stmt = (
        update(model)
        .where(model.id == row_id, model.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=utcnow() + timedelta(seconds=delay))
    )
    with session_scope(engine) as session:
        session.execute(stmt)


def release_all(engine: Engine, owner: str) -> None:
    """Give back every row owner holds (a graceful stop), claimable at once."""
    with session_scope(engine) as session:
        for model in _LEASED:
            session.execute(update(model).where(model.lease_owner == owner)
                            .values(lease_owner=None, lease_expires_at=None))
