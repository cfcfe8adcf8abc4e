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
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import Table, func, insert, select, tuple_, update
from sqlalchemy.engine import Engine

from gateway.data import tables
from gateway.data.db import reading, session_scope
from gateway.data.tables import DeliveryState, FlowState, as_utc, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from gateway.data.models import Delivery, Flow

# A queue, by its ORM class (the worker's) or its table: the queue reads and writes the tables (SQLAlchemy Core),
# so that `gateway queue` never imports the ORM.
Queued: TypeAlias = "type[Flow | Delivery] | Table"
# what a process's heartbeat renews and a graceful stop gives back
_LEASED = (tables.flow, tables.delivery, tables.endpoint)
# The deliveries a flow's worker makes itself: its invoices and their status-returns. Notifications (webhook,
# email) are always the delivery workers': a slow receiver must not hold up a flow.
FLOW_KINDS = ("invoice", "status")
# how long a flow committed unacknowledged is left to the intake that committed it
ACK_GRACE = timedelta(seconds=5)


def new_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def table_of(model: Queued) -> Table:
    """A queue's table, given its ORM class or the table itself."""
    return model if isinstance(model, Table) else model.__table__


def _active(model: Queued) -> Any:
    """A row still to be done."""
    table = table_of(model)
    return table.c.state == (FlowState.RECU if table is tables.flow else DeliveryState.PENDING)


def _ready(model: Queued, now) -> list[Any]:
    """What makes a row claimable, besides an expired or absent lease."""
    table = table_of(model)
    if table is tables.flow:
        return [_active(table)]
    return [_active(table), table.c.next_attempt_at <= now]


def _free(model: Queued, now) -> Any:
    column = table_of(model).c
    return (column.lease_expires_at.is_(None)) | (column.lease_expires_at < now)


def _order(model: Queued) -> tuple[Any, ...]:
    """The order rows are claimed in: flows by turn, then in the order they arrived; deliveries as made."""
    flow = tables.flow.c
    return (flow.turn, flow.id) if table_of(model) is tables.flow else (tables.delivery.c.id,)


def _unattended(model: Queued, now: datetime) -> list[Any]:
    """Rows another step still holds without a lease.

    A flow intake has just committed is intake's until its acknowledgement is recorded, which intake writes
    next; after ACK_GRACE (intake died, or found no room for it) the flow's worker acknowledges it.
    The files delivered for a flow still RECU belong to the worker processing it (pipeline.finish makes
    them, and takes back those a crash or a full disk left): the queue leaves them alone, since two attempts
    at once would deliver a file twice. Its notifications are the queue's at once."""
    if table_of(model) is tables.flow:
        flow = tables.flow.c
        return [flow.acknowledged | (flow.received_at < now - ACK_GRACE)]
    flow, delivery = tables.flow.c, tables.delivery.c
    in_process = select(flow.id).where(flow.id == delivery.flow_id, flow.state == FlowState.RECU).exists()
    return [~(delivery.kind.in_(FLOW_KINDS) & in_process)]


def turn(session: Session, account: str) -> int:
    """The turn of a flow account queues now: after its flows still queued, not before the lowest claimable."""
    now, flow = utcnow(), tables.flow
    last = session.scalar(select(func.max(flow.c.turn)).where(flow.c.account == account, _active(flow)))
    serving = session.scalar(select(func.min(flow.c.turn)).where(*_ready(flow, now), _free(flow, now)))
    return max((last or 0) + 1, serving or 0)


def claim(engine: Engine, owner: str, lease_seconds: float, model: Queued = tables.flow,
          limit: int = 1, look: bool = True) -> list[tuple[Any, int]]:
    """Lease up to limit claimable rows of model to owner, in claim order; return (id, attempts so far) of each.

    An idle worker looks before it claims: the look takes no write lock, so polling an empty queue does
    not hold up the processes that have work to record. A worker whose last claim came back full claims
    without looking (look=False): work is likely still waiting."""
    now, table = utcnow(), table_of(model)
    candidates = (
        select(table.c.id)
        .where(*_ready(model, now), *_unattended(model, now), _free(model, now))
        .order_by(*_order(model))
        .limit(limit)
    )
    if look:
        with session_scope(engine, write=False) as session:
            if session.execute(candidates.limit(1)).first() is None:
                return []
    stmt = (
        update(table)
        .where(table.c.id.in_(candidates.with_for_update(skip_locked=True).scalar_subquery()))
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=table.c.attempts + 1)
        .returning(table.c.id, table.c.attempts, *_order(model))
    )
    with session_scope(engine) as session:
        rows = session.execute(stmt).all()
    return [(row[0], row[1]) for row in sorted(rows, key=lambda row: row[2:])]  # RETURNING keeps no order


# Built once: building an INSERT at each call costs as much as the ORM object it replaces. No order asked of
# RETURNING: SQLAlchemy would then insert the rows one by one on SQLite.
_ADD_DELIVERIES = insert(tables.delivery).returning(tables.delivery.c.invoice_id, tables.delivery.c.id)


def add_invoice_deliveries(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Queue the deliveries of invoices (rows of table delivery, one an invoice, the columns with defaults left out
    as they will) in the caller's transaction, in one statement; returns their ids by invoice. The invoices must be
    in the database already: the session's pending changes are not flushed first, but left for its next query or
    its commit, so that a batch's changes are written together."""
    if not rows:
        return {}
    with session.no_autoflush:
        return {invoice_id: delivery_id for invoice_id, delivery_id in session.execute(_ADD_DELIVERIES, rows)}


def lease_deliveries(session: Session, owner: str, lease_seconds: float, flow_ids: list[str]) -> list[int]:
    """Lease to owner every delivery of flow_ids that is due and free, in the order they were made, but their
    notifications (left to the delivery workers).

    The worker that has just judged flows takes the status-returns they queued (and any other due
    delivery of those flows) at once, instead of leaving each to a later claim; in the caller's transaction,
    which may have just made some of them.
    """
    now, delivery = utcnow(), tables.delivery
    stmt = (
        update(delivery)
        .where(delivery.c.flow_id.in_(flow_ids), delivery.c.kind.in_(FLOW_KINDS), *_ready(delivery, now),
               _free(delivery, now))
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=delivery.c.attempts + 1)
        .returning(delivery.c.id)
    )
    session.flush()
    return sorted(session.execute(stmt).scalars())  # a table's UPDATE: no object of the session to bring up to date


def renew(engine: Engine, owner: str, lease_seconds: float) -> None:
    """Extend every lease owner holds (its heartbeat), for each kind of row: in one statement those no transaction
    holds, then one by one, each in a transaction of its own, those a worker's transaction holds meanwhile.

    A worker records a batch's deliveries, then its flows, in one transaction, in its own order; a heartbeat
    locking several of the same rows in another order could deadlock with it. The first statement skips locked
    rows, so it never waits; each later one holds a single row's lock, so it only ever waits (for the worker's
    commit), and the rows a long transaction held are renewed as soon as it ends.
    """
    expires = utcnow() + timedelta(seconds=lease_seconds)
    for table in _LEASED:
        keys = table.primary_key.columns
        mine = table.c.lease_owner == owner
        with session_scope(engine) as session:
            held = set(session.execute(select(*keys).where(mine)).all())
            free = select(*keys).where(mine).with_for_update(skip_locked=True)
            renewed = set(session.execute(update(table).where(tuple_(*keys).in_(free)).values(
                lease_expires_at=expires).returning(*keys)).all()) if held else set()
        for key in held - renewed:
            with session_scope(engine) as session:
                session.execute(update(table).where(tuple_(*keys) == tuple(key), mine).values(lease_expires_at=expires))


def release(engine: Engine, row_id: Any, owner: str, delay: float = 0.0, model: Queued = tables.flow) -> None:
    """Give a row back to the queue, claimable again after delay seconds."""
    table = table_of(model)
    stmt = (
        update(table)
        .where(table.c.id == row_id, table.c.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=utcnow() + timedelta(seconds=delay))
    )
    with session_scope(engine) as session:
        session.execute(stmt)


def release_all(engine: Engine, owner: str) -> None:
    """Give back every row owner holds (a graceful stop), claimable at once."""
    with session_scope(engine) as session:
        for table in _LEASED:
            session.execute(update(table).where(table.c.lease_owner == owner)
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
    now, table = utcnow(), table_of(model)
    flows = table is tables.flow
    due_since = table.c.received_at if flows else table.c.next_attempt_at
    counted = select(func.count()).select_from(table)
    with reading(engine) as connection:
        active = connection.execute(counted.where(_active(table))).scalar_one()
        leased = connection.execute(counted.where(_active(table), table.c.lease_owner.is_not(None),
                                                 ~_free(table, now))).scalar_one()
        ready, oldest = connection.execute(select(func.count(), func.min(due_since)).select_from(table).where(
            *_ready(table, now), *_unattended(table, now), _free(table, now))).one()
        dead = 0 if flows else connection.execute(counted.where(table.c.state == DeliveryState.DEAD)).scalar_one()
    return Backlog(ready, leased, active - ready - leased, dead, _age(now, oldest) if oldest else None)


def processes(engine: Engine, lease_seconds: float) -> list[Process]:
    """The registered processes, oldest first; one that stopped beating for lease_seconds has died (its leases
    have expired) or lost the database."""
    now = utcnow()
    with reading(engine) as connection:
        rows = connection.execute(select(tables.worker).order_by(tables.worker.c.started_at)).all()
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
    return Overview(backlog(engine, tables.flow), backlog(engine, tables.delivery), processes(engine, lease_seconds))


def _age(now: datetime, moment: datetime) -> float:
    """Seconds from moment to now."""
    return (now - as_utc(moment)).total_seconds()
