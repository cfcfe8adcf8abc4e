"""Wake-ups: work queued by one process reaches the idle workers of every process at once.

A worker that finds no work waits on its process's wakeup event for at most [worker] poll_interval.
Whoever queues work wakes them: the event of its own process, and, on PostgreSQL, a NOTIFY on
gateway_work, which the database delivers when the transaction commits to every process's Listener,
which sets theirs. A wake-up only makes work start sooner: a lost one (SQLite has no NOTIFY, a
listener may be reconnecting) is made up for by the next poll.
"""

from __future__ import annotations

import threading

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gateway.app import App
from gateway.ops.dbdown import is_database_down
from gateway.ops.log import log

CHANNEL = "gateway_work"
_WAKE = "gateway_wake"  # Session.info key: the event to set once its transaction commits
_STOP_LATENCY = 0.5  # seconds a listener may take to see stop(): reading a quiet socket costs nothing
_RETRY_MIN, _RETRY_MAX = 0.25, 30.0  # seconds before listening again after the connection was lost
_CONNECT_TIMEOUT = 5  # seconds: a stopping gateway waits for a listener that is connecting


def at_commit(app: App, session: Session) -> None:
    """Wake every process's idle workers when session's transaction, which queued work, commits."""
    if _notifies(app.engine):
        session.execute(text(f"NOTIFY {CHANNEL}"))
    session.info[_WAKE] = app.wakeup


def now(app: App) -> None:
    """Wake every process's idle workers for work already committed."""
    app.wakeup.set()
    if _notifies(app.engine):
        with app.engine.begin() as connection:
            connection.execute(text(f"NOTIFY {CHANNEL}"))


def _notifies(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@event.listens_for(Session, "after_commit")
def _wake(session: Session) -> None:
    wakeup = session.info.pop(_WAKE, None)
    if wakeup is not None:
        wakeup.set()


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_WAKE, None)


class Listener:
    """A thread that LISTENs on its own connection and sets the app's wakeup at each notification."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wakeups", daemon=True)

    @staticmethod
    def needed(app: App) -> bool:
        return _notifies(app.engine)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        url = self.app.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        delay = _RETRY_MIN
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    delay = _RETRY_MIN
                    self.app.wakeup.set()  # for what was queued while it was not listening
                    while not self._stop.is_set():
                        for _ in connection.notifies(timeout=_STOP_LATENCY):
                            self.app.wakeup.set()
            except psycopg.Error as exc:
                if is_database_down(exc):  # said once by the alarm; the workers poll meanwhile
                    self.app.database.report("wakeups", exc)
                else:
                    log.warning("wakeups_lost", error=str(exc), retry_in=delay)
                self._stop.wait(delay)
                delay = min(2 * delay, _RETRY_MAX)
