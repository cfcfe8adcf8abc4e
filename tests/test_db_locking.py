"""SQLite's write lock: sessions that only read, and workers polling an empty queue, never wait for it."""

from __future__ import annotations

import threading

from sqlalchemy import event
from sqlmodel import select

from gateway import queue
from gateway.db import make_engine, session_scope
from gateway.models import Delivery, Flow


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
            assert queue.claim(quick, "owner", 30.0, model) is None
    finally:
        release.set()
        thread.join()
