"""The work queue: rows waiting in the database (flows to process, deliveries to make), claimed under a lease.

A claim is one UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED) RETURNING:
picking and marking are a single statement, so two workers never hold the same row. SQLAlchemy
renders the row lock only where the database has one (PostgreSQL); on SQLite the statement runs
under BEGIN IMMEDIATE, whose write lock serialises claimers just as well. A worker that dies stops
renewing its leases; once they expire, any worker takes the rows again.

Flows are claimed by turn, then in the order they arrived, so that accounts are served in turn: intake gives
each flow the turn after its account's flows still queued, and not before the turn the queue is at (turn()).
A burst of 1,000 flows from one account takes turns 1 to 1,000; a flow another account sends meanwhile takes
the turn being served, and is claimed next. An account's flows keep their order (a recipient's status messages
are applied in the order it sent them). Deliveries are claimed in the order they were made.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gateway.db import session_scope
from gateway.models import Delivery, DeliveryState, Endpoint, Flow, FlowState, Worker, as_utc, utcnow

Queued = type[Flow] | type[Delivery]
_LEASED = (Flow, Delivery, Endpoint)  # what a process's heartbeat renews and a graceful stop gives back
# The deliveries a flow's worker makes itself: its invoices and their status-returns. Notifications (webhook,
# email) are always the delivery workers': a slow receiver must not hold up a flow.
FLOW_KINDS = ("invoice", "status")


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _active(model: Queued) -> Any:
    """A row still to be done."""
    return Flow.state == FlowState.RECU if model is Flow else Delivery.state == DeliveryState.PENDING


def _ready(model: Queued, now) -> list[Any]:
    """What makes a row claimable, besides an expired or absent lease."""
    if model is Flow:
        return [_active(Flow)]
    return [_active(Delivery), Delivery.next_attempt_at <= now]


def _free(model: Queued, now) -> Any:
    return (model.lease_expires_at.is_(None)) | (model.lease_expires_at < now)


def _order(model: Queued) -> tuple[Any, ...]:
    """The order rows are claimed in: flows by turn, then in the order they arrived; deliveries as made."""
    return (Flow.turn, Flow.id) if model is Flow else (Delivery.id,)


def _unattended(model: Queued) -> list[Any]:
    """The files delivered for a flow still RECU belong to the worker processing it (pipeline.process makes
    them, and takes back those a crash or a full disk left): the queue leaves them alone, since two attempts
    at once would deliver a file twice. Its notifications are the queue's at once."""
    if model is Flow:
        return []
    in_process = select(Flow.id).where(Flow.id == Delivery.flow_id, Flow.state == FlowState.RECU).exists()
    return [~(Delivery.kind.in_(FLOW_KINDS) & in_process)]


def turn(session: Session, account: str) -> int:
    """The turn of a flow account queues now: after its flows still queued, not before the lowest claimable."""
    now = utcnow()
    last = session.scalar(select(func.max(Flow.turn)).where(Flow.account == account, _active(Flow)))
    serving = session.scalar(select(func.min(Flow.turn)).where(*_ready(Flow, now), _free(Flow, now)))
    return max((last or 0) + 1, serving or 0)


def claim(engine: Engine, owner: str, lease_seconds: float, model: Queued = Flow,
          limit: int = 1) -> list[tuple[Any, int]]:
    """Lease up to limit claimable rows of model to owner, in claim order; return (id, attempts so far) of each.

    An idle worker looks before it claims: the look takes no write lock, so polling an empty queue does
    not hold up the processes that have work to record."""
    now = utcnow()
    candidates = (
        select(model.id)
        .where(*_ready(model, now), *_unattended(model), _free(model, now))
        .order_by(*_order(model))
        .limit(limit)
    )
    with session_scope(engine, write=False) as session:
        if session.execute(candidates.limit(1)).first() is None:
            return []
    stmt = (
        update(model)
        .where(model.id.in_(candidates.with_for_update(skip_locked=True).scalar_subquery()))
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=model.attempts + 1)
        .returning(model.id, model.attempts, *_order(model))
    )
    with session_scope(engine) as session:
        rows = session.execute(stmt).all()
    return [(row[0], row[1]) for row in sorted(rows, key=lambda row: row[2:])]  # RETURNING keeps no order


def lease_deliveries(session: Session, owner: str, lease_seconds: float, flow_ids: list[str]) -> list[int]:
    """Lease to owner every delivery of flow_ids that is due and free, in the order they were made, but their
    notifications (left to the delivery workers).

    The worker that has just judged flows takes the status-returns they queued (and any other due
    delivery of those flows) at once, instead of leaving each to a later claim; in the caller's transaction,
    which may have just made some of them.
    """
    now = utcnow()
    stmt = (
        update(Delivery)
        .where(Delivery.flow_id.in_(flow_ids), Delivery.kind.in_(FLOW_KINDS), *_ready(Delivery, now),
               _free(Delivery, now))
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=Delivery.attempts + 1)
        .returning(Delivery.id)
    )
    session.flush()
    return sorted(session.execute(stmt, execution_options={"synchronize_session": False}).scalars())


def renew(engine: Engine, owner: str, lease_seconds: float) -> None:
    """Extend every lease owner holds (its heartbeat): one transaction per kind of row, skipping the rows a
    transaction has locked meanwhile (renewed at the next beat).

    A worker records a batch's deliveries, then its flows, in one transaction, in its own order; a heartbeat
    locking the same rows in another order would deadlock with it. Taking only the rows nobody holds, it
    never waits for a worker, and never holds one up.
    """
    expires = utcnow() + timedelta(seconds=lease_seconds)
    for model in _LEASED:
        keys = model.__table__.primary_key.columns
        held = select(*keys).where(model.lease_owner == owner).with_for_update(skip_locked=True)
        with session_scope(engine) as session:
            session.execute(update(model).where(tuple_(*keys).in_(held)).values(lease_expires_at=expires))


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


@dataclass(frozen=True)
class Backlog:
    """A queue's rows still to do, as claims see them, and those dead-lettered (deliveries only)."""

    ready: int  # claimable now
    leased: int  # held by a lease not yet expired: being worked on, or their process died a moment ago
    later: int  # due later: a delivery's next attempt, a row given back with a delay
    dead: int
    waited: float | None  # seconds the oldest claimable row has been due


@dataclass(frozen=True)
class Process:
    """A process registered with its heartbeat; alive while it beats within a lease's time."""

    id: str
    host: str
    pid: int
    roles: tuple[str, ...]  # what it does (`gateway run --role`); none for a row older than migration 0006
    started_at: datetime
    heartbeat_age: float  # seconds since its last heartbeat
    alive: bool


def backlog(engine: Engine, model: Queued) -> Backlog:
    """What an operator watching the queue of model needs: how much waits, how long, how much is stuck."""
    now = utcnow()
    due_since = Flow.received_at if model is Flow else Delivery.next_attempt_at
    counted = select(func.count()).select_from(model)
    with session_scope(engine, write=False) as session:
        active = session.scalar(counted.where(_active(model)))
        leased = session.scalar(counted.where(_active(model), model.lease_owner.is_not(None), ~_free(model, now)))
        ready, oldest = session.execute(select(func.count(), func.min(due_since)).select_from(model).where(
            *_ready(model, now), *_unattended(model), _free(model, now))).one()
        dead = session.scalar(counted.where(Delivery.state == DeliveryState.DEAD)) if model is Delivery else 0
    return Backlog(ready, leased, active - ready - leased, dead, _age(now, oldest) if oldest else None)


def processes(engine: Engine, lease_seconds: float) -> list[Process]:
    """The registered processes, oldest first; one that stopped beating for lease_seconds has died (its leases
    have expired) or lost the database."""
    now = utcnow()
    with session_scope(engine, write=False) as session:
        rows = session.execute(select(Worker).order_by(Worker.started_at)).scalars().all()
    found = []
    for row in rows:
        age = _age(now, row.heartbeat_at)
        found.append(Process(row.id, row.host, row.pid, tuple(r for r in row.roles.split(",") if r), row.started_at,
                             age, age < lease_seconds))
    return found


@dataclass(frozen=True)
class Overview:
    """What an operator watching the gateway sees (`gateway queue`, the console's queue page): each queue's
    backlog and the processes at work."""

    flows: Backlog
    deliveries: Backlog
    processes: list[Process]


def overview(engine: Engine, lease_seconds: float) -> Overview:
    return Overview(backlog(engine, Flow), backlog(engine, Delivery), processes(engine, lease_seconds))


def _age(now: datetime, moment: datetime) -> float:
    """Seconds from moment to now."""
    return (now - as_utc(moment)).total_seconds()
