"""Intake: the one door every channel hands a received file to.

The order of steps is the acknowledgement's promise. The file is first claimed by an atomic rename
into the spool, next to a sidecar naming its account; it is copied into the content store while hashed
(a copy of the gateway's own, read-only: a sender still holding the file open cannot change what was
acknowledged) and fsynced; only then is its flow row committed, and only after that is the
acknowledgement written. A crash at any step leaves the spool entry, which `recover()` finishes: a flow is never
acknowledged before it is safe, and never lost once it is.

Several processes may share the spool. The sidecar is locked (gateway.locks) by the process taking the
file, from the moment it appears until the entry is gone, and recover() takes only the entries no live
process holds: run periodically by every ingest process, it finishes a dead one's entries.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import structlog
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from gateway import events, locks, queue, wakeups
from gateway.app import App
from gateway.db import session_scope
from gateway.diskfull import DiskFull, is_disk_full
from gateway.findings import Finding, dumps
from gateway.log import log
from gateway.models import Flow, IdempotencyKey
from gateway.names import flow_name_refusal, recordable
from gateway.returns import build_ack


@dataclass(frozen=True)
class Arrival:
    """What a channel knows of a file it received."""

    account: str
    original_name: str
    channel: str
    idempotency_key: str | None = None  # an API deposit's: a retry with the same key gets the first flow


def new_flow_id() -> str:
    """Time-ordered to the microsecond: the queue takes each account's flows in the order they arrived (a
    recipient's status messages must be applied in the order it sent them)."""
    return f"{datetime.now(timezone.utc):%Y%m%d%H%M%S%f}-{secrets.token_hex(3)}"


def intake(app: App, path: Path, arrival: Arrival, expected: tuple[int, int] | None = None) -> Flow | None:
    """Take the file at path for arrival.account; return its flow, or None if another taker won or the file
    changed since the channel last looked at it (expected: its size and mtime in ns then; it is put back).

    Raises DiskFull if there is no room to take it: the file is then left unacknowledged at path (or in
    the spool, for recover(), if it cannot be put back).
    """
    flow_id = new_flow_id()
    sidecar, data = _spool_paths(app, flow_id)
    try:
        with locks.create(sidecar, json.dumps(arrival.__dict__).encode()), _put_back_if_full(path, data, sidecar):
            try:
                _claim(path, data)
            except FileNotFoundError:  # another taker won: theirs to report
                sidecar.unlink()
                log.debug("taken_elsewhere", account=arrival.account, original_name=arrival.original_name)
                return None
            except NotRegular:
                sidecar.unlink()
                log.warning("zone_entry_removed", account=arrival.account, path=str(path),
                            reason="not a regular file")
                return None
            if expected is not None and _moved(data, expected) and _put_back(data, path):
                sidecar.unlink()
                log.info("intake_put_back", account=arrival.account, original_name=arrival.original_name,
                         reason="changed since it was seen still")
                return None
            return _admit(app, flow_id, arrival)
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        log.debug("intake_refused", reason="disk_full", account=arrival.account,
                  original_name=arrival.original_name)
        app.disk.report("intake", exc, account=arrival.account, original_name=arrival.original_name)
        raise DiskFull(errno.ENOSPC, f"no room to take {arrival.original_name}") from exc


def recover(app: App) -> int:
    """Finish the spool entries no live process holds (a crash interrupted them); returns the number of
    flows admitted."""
    admitted = 0
    spool = app.settings.spool_dir
    for scratch in spool.glob(".*.tmp"):  # a sidecar or a download a crash cut short
        with locks.take(scratch) as fd:
            if fd is not None:
                scratch.unlink()
    for sidecar in sorted(spool.glob("*.json")):
        with locks.take(sidecar) as fd:
            if fd is not None:
                admitted += _recover_entry(app, sidecar, fd)
    return admitted


def _recover_entry(app: App, sidecar: Path, fd: int) -> int:
    """Finish the entry of sidecar, held as fd; returns 1 if it was admitted."""
    data = sidecar.with_suffix(".data")
    if not data.exists():  # the claim never happened (or only its copy): the file is still in its zone
        sidecar.with_suffix(".part").unlink(missing_ok=True)
        sidecar.unlink()
        return 0
    with open(fd, "rb", closefd=False) as fh:
        arrival = Arrival(**json.load(fh))
    try:
        _admit(app, sidecar.stem, arrival)
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        app.disk.report("recover", exc, flow_id=sidecar.stem)  # the entry waits for the next recovery
        return 0
    return 1


def acknowledge(app: App, flow: Flow) -> None:
    """Write the acknowledgement of receipt (idempotent: same name, same content) and record it once.

    Intake and a worker that claimed the flow meanwhile may both get here: the row lock (SQLite's write
    lock) lets the first record the event and the second see it was.
    """
    digest = app.emit(flow.account, f"{flow.id}.ack.xml", build_ack(flow))
    with session_scope(app.engine) as session:
        stored = session.get(Flow, flow.id, with_for_update=True)
        if not stored.acknowledged:
            stored.acknowledged = True
            events.record(session, flow.id, "acknowledged", account=flow.account, sha256=digest)
    flow.acknowledged = True


def _spool_paths(app: App, flow_id: str) -> tuple[Path, Path]:
    spool = app.settings.spool_dir
    return spool / f"{flow_id}.json", spool / f"{flow_id}.data"


class NotRegular(Exception):
    """What was to be taken is a link, fifo or device (put there after the channel checked it)."""


def _claim(path: Path, data: Path) -> None:
    """Move the file out of reach of its sender and of other takers, atomically when possible.

    A regular file only: a sender with a shell (sshd mode) could swap the file for a link or a fifo
    between the watcher's check and this rename; it is removed, never opened.
    """
    try:
        os.rename(path, data)
        if not stat.S_ISREG(os.lstat(data).st_mode):
            os.unlink(data)
            raise NotRegular(path)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise NotRegular(path) from exc
        tmp = data.with_suffix(".part")
        try:
            shutil.copyfile(path, tmp)
            os.rename(tmp, data)
        except BaseException:  # the disk full, typically: the file is still at path
            tmp.unlink(missing_ok=True)
            raise
        os.unlink(path)


@contextmanager
def _put_back_if_full(path: Path, data: Path, sidecar: Path) -> Iterator[None]:
    """Undo a claim that found no room to be admitted, so that the file is taken again from where it was."""
    try:
        yield
    except Exception as exc:
        if is_disk_full(exc) and _put_back(data, path):
            sidecar.unlink()
        raise


def _moved(data: Path, expected: tuple[int, int]) -> bool:
    st = os.lstat(data)
    return (st.st_size, st.st_mtime_ns) != expected


def _put_back(data: Path, path: Path) -> bool:
    """Give the file its name back, never over a file that has come under that name since; False if it
    must stay in the spool instead (also when spool and zone are two file systems)."""
    if not data.exists():  # never claimed
        return True
    try:
        os.link(data, path)
    except OSError:
        log.warning("intake_left_in_spool", reason="disk_full", path=str(path), spooled=str(data))
        return False
    data.unlink()
    return True


def _admit(app: App, flow_id: str, arrival: Arrival) -> Flow:
    sidecar, data = _spool_paths(app, flow_id)
    with structlog.contextvars.bound_contextvars(flow_id=flow_id, account=arrival.account):
        digest, size = app.store.put_file(data)
        try:
            flow = _commit(app, flow_id, arrival, digest, size)
        except IntegrityError:  # the same idempotency key committed meanwhile by another deposit: its flow
            flow = _commit(app, flow_id, arrival, digest, size)
        data.unlink()
        sidecar.unlink()
        app.disk.clear()
        if not flow.acknowledged:
            _acknowledge_if_room(app, flow)
    wakeups.now(app)
    return flow


def _acknowledge_if_room(app: App, flow: Flow) -> None:
    """Acknowledge a committed flow, or leave it to its worker when there is no room for it yet."""
    try:
        acknowledge(app, flow)
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        app.disk.report("acknowledge", exc)


def _commit(app: App, flow_id: str, arrival: Arrival, digest: str, size: int) -> Flow:
    """Commit the flow row, or return it if a previous run already did."""
    with session_scope(app.engine) as session:
        existing = session.get(Flow, flow_id)
        if existing is not None:
            return existing
        if arrival.idempotency_key is not None:
            first = session.get(IdempotencyKey, (arrival.account, arrival.idempotency_key))
            if first is not None:  # a retried deposit (the API answers with the first flow)
                return session.get(Flow, first.flow_id)
            session.add(IdempotencyKey(account=arrival.account, key=arrival.idempotency_key, flow_id=flow_id))
        name = recordable(arrival.original_name)
        flow = Flow(id=flow_id, account=arrival.account, original_name=name,
                    size=size, sha256=digest, channel=arrival.channel, turn=queue.turn(session, arrival.account))
        earlier = session.exec(
            select(Flow).where(Flow.account == arrival.account, Flow.sha256 == digest)
            .order_by(Flow.received_at).limit(1)
        ).first()
        refusals = [f for f in (flow_name_refusal(name), _duplicate(earlier) if earlier else None) if f]
        if refusals:
            flow.findings = dumps(refusals)
        session.add(flow)
        events.record(session, flow_id, "received", account=arrival.account, channel=arrival.channel,
                      original_name=name, size=size, sha256=digest,
                      duplicate_of=earlier.id if earlier else None)
    log.debug("flow_committed", flow_id=flow_id)
    return flow


def _duplicate(earlier: Flow) -> Finding:
    return Finding(stage="admissibility", rule="FLOW-DUPLICATE",
                   message=f"Same content (SHA-256) as flow {earlier.id} received on "
                           f"{earlier.received_at:%Y-%m-%d %H:%M:%S} UTC as {earlier.original_name!r}; "
                           "the flow is not processed again.")
