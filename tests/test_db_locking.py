"""Locks: on SQLite, sessions that only read, and workers polling an empty queue, never wait for the write
lock; on PostgreSQL, the heartbeat and a worker take row locks in an order that cannot deadlock."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import event, text, update
from sqlmodel import select

from gateway.data.db import make_engine, session_scope
from gateway.data.models import Delivery, DeliveryState, Flow, FlowState, Invoice, Verdict, as_utc, utcnow
from gateway.engine import queue
from tests.harness import wait_for


def _holding_write_lock(engine):
    """A thread in a write transaction until released; returns (started, release, thread)."""
    started, release = threading.Event(), threading.Event()

    def hold() -> None:
        with session_scope(engine) as session:
            session.exec(select(Flow.id)).all()  # the session begins: BEGIN IMMEDIATE is held
            started.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert started.wait(10)
    return release, thread


def _quick_engine(tmp_path):
    """An engine on a fresh SQLite file whose writers give up after 0.2 s instead of 30."""
    engine = make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    engine.dispose()
    quick = make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    event.listen(quick, "connect", lambda conn, _record: conn.execute("PRAGMA busy_timeout = 200"))
    quick.dispose()  # the connection that checked the schema predates the listener
    return engine, quick


def test_a_read_session_goes_on_while_another_holds_the_write_lock_and_a_write_session_waits(tmp_path):
    engine, quick = _quick_engine(tmp_path)
    release, thread = _holding_write_lock(engine)
    try:
        with session_scope(quick, write=False) as session:
            assert session.exec(select(Flow.id)).all() == []
        try:
            with session_scope(quick) as session:
                session.exec(select(Flow.id)).all()
        except Exception as exc:  # the writer could not begin within its busy timeout
            assert "locked" in str(exc)
        else:
            raise AssertionError("a write session began while another held the write lock")
    finally:
        release.set()
        thread.join()


def test_a_claim_on_an_empty_queue_takes_no_write_lock(tmp_path):
    engine, quick = _quick_engine(tmp_path)
    release, thread = _holding_write_lock(engine)
    try:
        for model in (Flow, Delivery):
            assert queue.claim(quick, "owner", 30.0, model) == []
    finally:
        release.set()
        thread.join()


def test_heartbeat_and_a_worker_recording_a_batch_never_deadlock(postgres):
    """A worker records a batch's deliveries, in its own order, then its flows (pipeline.finish's last
    transaction); a heartbeat renewing that process's leases meanwhile renews at once the rows the worker does not
    hold, waits for the worker's commit to renew the one it holds, and neither is aborted as a deadlock."""
    name = postgres.create_database()
    engine = make_engine(postgres.url(name))
    owner, later = "worker:1:0", utcnow() + timedelta(seconds=60)
    try:
        with session_scope(engine) as session:
            session.add(Flow(id="f1", account="acme", original_name="f1.xml", size=1, sha256="0",
                             lease_owner=owner, lease_expires_at=later))
            session.flush()
            session.add(Invoice(id="f1-001", flow_id="f1", verdict=Verdict.ACCEPTED))
            session.flush()
            session.add_all([Delivery(id=n, invoice_id="f1-001", flow_id="f1", destination="mairie-exemple",
                                      file_name=f"f1-001.{n}.xml", sha256="0", lease_owner=owner,
                                      lease_expires_at=later) for n in (1, 2, 3)])
        failures: list[BaseException] = []

        def renew() -> None:
            try:
                queue.renew(engine, owner, 600.0)
            except BaseException as exc:
                failures.append(exc)

        def expiries() -> dict[int, object]:
            with session_scope(engine, write=False) as session:
                return {n: as_utc(at) for n, at in session.execute(select(Delivery.id, Delivery.lease_expires_at))}

        renewed = as_utc(later) + timedelta(seconds=60)
        with session_scope(engine) as worker:
            worker.execute(update(Delivery).where(Delivery.id == 2).values(state=DeliveryState.DELIVERED))
            heartbeat = threading.Thread(target=renew)
            heartbeat.start()
            wait_for(lambda: _waiting_for_a_lock(worker), what="the heartbeat waiting for the row the worker holds")
            seen = expiries()
            assert seen[1] > renewed < seen[3] and seen[2] == as_utc(later), "the free rows first, in one go"
            worker.execute(update(Delivery).where(Delivery.id == 1).values(state=DeliveryState.DELIVERED))
            worker.execute(update(Flow).where(Flow.id == "f1").values(state=FlowState.INTEGRE))
        heartbeat.join(30)
        assert failures == [] and not heartbeat.is_alive()
        assert all(at > renewed for at in expiries().values()), "the held row renewed once the worker committed"
    finally:
        engine.dispose()
        postgres.drop_database(name)


def _waiting_for_a_lock(session) -> bool:
    return session.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar() > 0
