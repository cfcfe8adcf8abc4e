"""Intake: the one door every channel hands a received file to.

The order of steps is the acknowledgement's promise. The file is first claimed by an atomic rename
into the spool, next to a sidecar naming its account; it is fsynced and hard-linked into the
content store; only then is its flow row committed, and only after that is the acknowledgement
written. A crash at any step leaves the spool entry, which `recover()` finishes at the next start:
a flow is never acknowledged before it is safe, and never lost once it is.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import structlog
from sqlmodel import select

from gateway import events
from gateway.app import App
from gateway.db import session_scope
from gateway.findings import Finding, dumps
from gateway.ingest.names import name_refusal, recordable
from gateway.log import log
from gateway.models import Flow
from gateway.returns import build_ack
from gateway.store import fsync_dir, write_atomic


@dataclass(frozen=True)
class Arrival:
    """What a channel knows of a file it received."""

    account: str
    original_name: str
    channel: str


def new_flow_id() -> str:
    """Time-ordered to the microsecond: the queue takes flows in the order they arrived (a recipient's
    status messages must be applied in the order it sent them)."""
    return f"{datetime.now(timezone.utc):%Y%m%d%H%M%S%f}-{secrets.token_hex(3)}"


def intake(app: App, path: Path, arrival: Arrival) -> Flow | None:
    """Take the file at path for arrival.account; return its flow, or None if another taker won."""
    flow_id = new_flow_id()
    sidecar, data = _spool_paths(app, flow_id)
    write_atomic(sidecar, json.dumps(arrival.__dict__).encode())
    try:
        _claim(path, data)
    except FileNotFoundError:
        sidecar.unlink(missing_ok=True)
        return None
    return _admit(app, flow_id, arrival)


def recover(app: App) -> int:
    """Finish what a crash interrupted in the spool; returns the number of flows admitted."""
    admitted = 0
    spool = app.settings.spool_dir
    for partial in [*spool.glob("*.part"), *spool.glob(".*.tmp")]:  # writes a crash cut short
        partial.unlink()
    for sidecar in sorted(spool.glob("*.json")):
        flow_id = sidecar.stem
        data = sidecar.with_suffix(".data")
        if not data.exists():  # the claim never happened: the file is still in its zone
            sidecar.unlink()
            continue
        arrival = Arrival(**json.loads(sidecar.read_bytes()))
        _admit(app, flow_id, arrival)
        admitted += 1
    return admitted


def acknowledge(app: App, flow: Flow) -> None:
    """Write the acknowledgement of receipt (idempotent: same name, same content) and record it."""
    app.emit(flow.account, f"{flow.id}.ack.xml", build_ack(flow))
    with session_scope(app.engine) as session:
        stored = session.get(Flow, flow.id)
        stored.acknowledged = True
        events.record(session, flow.id, "acknowledged", account=flow.account)
    flow.acknowledged = True


def _spool_paths(app: App, flow_id: str) -> tuple[Path, Path]:
    spool = app.settings.spool_dir
    return spool / f"{flow_id}.json", spool / f"{flow_id}.data"


def _claim(path: Path, data: Path) -> None:
    """Move the file out of reach of its sender and of other takers, atomically when possible."""
    try:
        os.rename(path, data)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = data.with_suffix(".part")
        shutil.copyfile(path, tmp)
        os.rename(tmp, data)
        os.unlink(path)


def _store(app: App, data: Path) -> tuple[str, int]:
    """fsync the spooled file and link it into the content store under its digest."""
    digest = hashlib.sha256()
    with open(data, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
        os.fsync(fh.fileno())
        size = fh.tell()
    target = app.store.path(digest.hexdigest())
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(data, target)
        except FileExistsError:
            pass
        fsync_dir(target.parent)
    return digest.hexdigest(), size


def _admit(app: App, flow_id: str, arrival: Arrival) -> Flow:
    sidecar, data = _spool_paths(app, flow_id)
    with structlog.contextvars.bound_contextvars(flow_id=flow_id, account=arrival.account):
        digest, size = _store(app, data)
        flow = _commit(app, flow_id, arrival, digest, size)
        data.unlink()
        sidecar.unlink()
        if not flow.acknowledged:
            acknowledge(app, flow)
    app.wakeup.set()
    return flow


def _commit(app: App, flow_id: str, arrival: Arrival, digest: str, size: int) -> Flow:
    """Commit the flow row, or return it if a previous run already did."""
    with session_scope(app.engine) as session:
        existing = session.get(Flow, flow_id)
        if existing is not None:
            return existing
        name = recordable(arrival.original_name)
        flow = Flow(id=flow_id, account=arrival.account, original_name=name,
                    size=size, sha256=digest, channel=arrival.channel)
        earlier = session.exec(
            select(Flow).where(Flow.account == arrival.account, Flow.sha256 == digest)
            .order_by(Flow.received_at).limit(1)
        ).first()
        refusals = [f for f in (name_refusal(name), _duplicate(earlier) if earlier else None) if f]
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
