"""Intake: the one door every channel hands a received file to.

The order of steps is the acknowledgement's promise. The file is first claimed by an atomic rename
into the spool, next to a sidecar naming its account; it is copied into the content store while hashed
(a copy of the gateway's own, read-only: a sender still holding the file open cannot change what was
acknowledged) and fsynced; only then is its flow row committed, and only after that is the
acknowledgement written. A crash at any step leaves the spool entry, which `recover()` finishes: a flow is never
acknowledged before it is safe, and never lost once it is.

Several processes may share the spool. The sidecar is locked (gateway.engine.locks) by the process taking the
file, from the moment it appears until the entry is gone, and recover() takes only the entries no live
process holds: run periodically by every ingest process, it finishes a dead one's entries.

A channel receiving many files hands them over together (intake_all): each is claimed and stored as above, then
their flows are committed in one transaction, then their acknowledgements written and recorded in one more. The
promise is the same for each file; what a file costs in transactions is shared. The files a channel of this
process has promised to hand over are marked (PROMISED): the zone watcher leaves them to it.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import stat
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from gateway.app import App
from gateway.data import events, store
from gateway.data.db import session_scope
from gateway.data.findings import Finding, dumps
from gateway.data.models import Flow, IdempotencyKey
from gateway.engine import locks, queue, wakeups
from gateway.ingest.names import flow_name_refusal, recordable
from gateway.ops.diskfull import DiskFull, is_disk_full
from gateway.ops.log import log
from gateway.returns.acknowledge import acknowledge_all


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
    return f"{datetime.now(UTC):%Y%m%d%H%M%S%f}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Handed:
    """A file a channel hands to intake: where it is, what the channel knows of it and, for a file the channel saw
    holding still, its size and mtime in ns then (expected: it is put back if it changed since)."""

    path: Path
    arrival: Arrival
    expected: tuple[int, int] | None = None


def intake(app: App, path: Path, arrival: Arrival, expected: tuple[int, int] | None = None) -> Flow | None:
    """Take the file at path for arrival.account; return its flow, or None if another taker won or the file
    changed since the channel last looked at it (expected: its size and mtime in ns then; it is put back).

    Raises DiskFull if there is no room to take it: the file is then left unacknowledged at path (or in
    the spool, for recover(), if it cannot be put back).
    """
    taken = intake_all(app, [Handed(path, arrival, expected)])[0]
    if isinstance(taken, DiskFull):
        raise taken
    return taken


def intake_all(app: App, handed: list[Handed]) -> list[Flow | DiskFull | None]:
    """Take the files handed, together; for each, as intake() would: its flow, None, or the DiskFull it met (that
    file is left unacknowledged, the others are taken). Any other failure is raised: the files claimed by then
    stay in the spool for recover(), the others where they were.

    The files share their folders' fsyncs, in an order that keeps each file's promise: every sidecar is named
    durably (its content fsynced, then the spool once for all) before any file is claimed, so that a claimed file
    is never in the spool without the sidecar recover() finds it by; the claim's rename needs no fsync of its
    own: a crash that undoes it leaves the file where it was before intake, and the sidecar alone, which
    recover() removes. Each stored copy is fsynced, then its folder once for all (store.synced_dirs) before
    the commit, which alone makes the flows known; their acknowledgements follow the commit."""
    began = time.monotonic()
    taken: list[Flow | DiskFull | None] = [None] * len(handed)
    entries: list[tuple[int, _Entry]] = []
    with ExitStack() as held:
        spooled = _spool_all(app, handed, held, taken)
        with store.synced_dirs():
            for i, entry in spooled:
                try:
                    if _claim_entry(entry, handed[i]):
                        entry.digest, entry.size = app.store.put_file(entry.data)
                        entries.append((i, entry))
                except Exception as exc:  # _refused keeps a full disk as this file's outcome, raises the rest
                    taken[i] = _refused(app, exc, handed[i], entry)
        try:
            flows = _commit_all(app, [entry for _, entry in entries])
        except Exception as exc:  # a full disk puts every claimed file back (_refused); the rest raised
            for i, entry in entries:
                taken[i] = _refused(app, exc, handed[i], entry)
            return taken
        for (i, entry), flow in zip(entries, flows, strict=True):
            entry.data.unlink()
            entry.sidecar.unlink()
            taken[i] = flow
    if entries:
        _admitted(app, flows, began)
    return taken


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
        entry = _Entry(sidecar.stem, Arrival(**json.load(fh)), sidecar, data)
    began = time.monotonic()
    try:
        entry.digest, entry.size = app.store.put_file(data)
        flows = _commit_all(app, [entry])
    except Exception as exc:  # only a full disk is kept (reported, retried at the next recovery); others raised
        if not is_disk_full(exc):
            raise
        app.disk.report("recover", exc, flow_id=sidecar.stem)  # the entry waits for the next recovery
        return 0
    data.unlink()
    sidecar.unlink()
    _admitted(app, flows, began)
    return 1


class Promised:
    """Files a channel of this process has promised to hand to intake (the SFTP server's uploads, named in in/
    so that a crash leaves them to the zone watcher): the zone watcher of this process leaves them to it, rather
    than race it for them. A name promised twice (a second upload under it) is kept until both are released."""

    def __init__(self) -> None:
        self._paths: Counter[Path] = Counter()
        self._lock = threading.Lock()

    def add(self, path: Path) -> None:
        with self._lock:
            self._paths[path] += 1

    def release(self, path: Path) -> None:
        with self._lock:
            self._paths[path] -= 1
            if self._paths[path] <= 0:
                del self._paths[path]

    def __contains__(self, path: Path) -> bool:
        with self._lock:
            return path in self._paths


PROMISED = Promised()


@dataclass
class _Entry:
    """A spool entry: the flow id it is named after, its arrival, its sidecar and data, and once stored, the
    digest and size of its stored copy."""

    flow_id: str
    arrival: Arrival
    sidecar: Path
    data: Path
    digest: str = ""
    size: int = 0

    @classmethod
    def new(cls, app: App, arrival: Arrival) -> _Entry:
        flow_id = new_flow_id()
        return cls(flow_id, arrival, *_spool_paths(app, flow_id))


def _spool_all(app: App, handed: list[Handed], held: ExitStack,
               taken: list[Flow | DiskFull | None]) -> list[tuple[int, _Entry]]:
    """A spool entry for each file handed (by its index), its sidecar created, held until held ends, and named
    durably: the spool is fsynced once for all. A file whose sidecar found no room has its DiskFull in taken."""
    spooled: list[tuple[int, _Entry]] = []
    for i, one in enumerate(handed):
        entry = _Entry.new(app, one.arrival)
        try:
            held.enter_context(locks.create(entry.sidecar, json.dumps(one.arrival.__dict__).encode(), sync_dir=False))
        except Exception as exc:  # _refused keeps a full disk as this file's outcome, raises the rest
            taken[i] = _refused(app, exc, one, entry)
            continue
        spooled.append((i, entry))
    if spooled:
        store.fsync_dir(app.settings.spool_dir)
    return spooled


def _claim_entry(entry: _Entry, one: Handed) -> bool:
    """Claim the file of one into the spool entry, whose sidecar is named and held; False if another taker won or
    it changed since it was seen still (it is put back)."""
    arrival = one.arrival
    try:
        _claim(one.path, entry.data)
    except FileNotFoundError:  # another taker won: theirs to report
        entry.sidecar.unlink()
        log.debug("taken_elsewhere", account=arrival.account, original_name=arrival.original_name)
        return False
    except NotRegular:
        entry.sidecar.unlink()
        log.warning("zone_entry_removed", account=arrival.account, path=str(one.path), reason="not a regular file")
        return False
    if one.expected is not None and _moved(entry.data, one.expected) and _put_back(entry.data, one.path):
        entry.sidecar.unlink()
        log.info("intake_put_back", account=arrival.account, original_name=arrival.original_name,
                 reason="changed since it was seen still")
        return False
    return True


def _refused(app: App, exc: Exception, one: Handed, entry: _Entry) -> DiskFull:
    """The DiskFull of a file that found no room to be taken, put back from its spool entry if it was claimed;
    exc itself is raised if it is not the disk full."""
    if not is_disk_full(exc):
        raise exc
    if _put_back(entry.data, one.path):
        entry.sidecar.unlink(missing_ok=True)
    arrival = one.arrival
    log.debug("intake_refused", reason="disk_full", account=arrival.account, original_name=arrival.original_name)
    app.disk.report("intake", exc, account=arrival.account, original_name=arrival.original_name)
    full = DiskFull(errno.ENOSPC, f"no room to take {arrival.original_name}")
    full.__cause__ = exc
    return full


def _admitted(app: App, flows: list[Flow], began: float) -> None:
    """What follows the commit of flows: their acknowledgements (left to their workers when there is no room
    for them yet), and the workers woken."""
    app.disk.clear(since=began)  # what was stored from then on found room
    waiting = [flow for flow in flows if not flow.acknowledged]
    try:
        if waiting:
            acknowledge_all(app, waiting)
    except Exception as exc:  # only a full disk is kept (reported, retried later); others raised
        if not is_disk_full(exc):
            raise
        app.disk.report("acknowledge", exc)
    wakeups.now(app)


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


def _commit_all(app: App, entries: list[_Entry]) -> list[Flow]:
    """Commit the flows of entries in one transaction (those a previous run committed already are returned as
    they are); once more if a deposit with the same idempotency key committed meanwhile (its flow is returned)."""
    try:
        return _commit_rows(app, entries)
    except IntegrityError:
        return _commit_rows(app, entries)


def _commit_rows(app: App, entries: list[_Entry]) -> list[Flow]:
    if not entries:
        return []
    with session_scope(app.engine) as session:
        wanted = [e.flow_id for e in entries]
        existing = {flow.id: flow for flow in session.exec(select(Flow).where(Flow.id.in_(wanted)))}
        firsts = _firsts(session, [e.arrival for e in entries if e.flow_id not in existing])
        earliest = _earliest(session, [e for e in entries if e.flow_id not in existing])
        turns: dict[str, int] = {}
        flows, rows, keys = [], [], []
        for entry in entries:
            arrival = entry.arrival
            if entry.flow_id in existing:
                flows.append(existing[entry.flow_id])
                continue
            if arrival.idempotency_key is not None:
                first = firsts.get((arrival.account, arrival.idempotency_key))
                if first is not None:  # a retried deposit (the API answers with the first flow)
                    flows.append(first)
                    continue
                keys.append({"account": arrival.account, "key": arrival.idempotency_key, "flow_id": entry.flow_id})
            turns[arrival.account] = turns[arrival.account] + 1 if arrival.account in turns else \
                queue.turn(session, arrival.account)
            name = recordable(arrival.original_name)
            flow = Flow(id=entry.flow_id, account=arrival.account, original_name=name, size=entry.size,
                        sha256=entry.digest, channel=arrival.channel, turn=turns[arrival.account])
            earlier = earliest.setdefault((arrival.account, entry.digest), flow)
            earlier = earlier if earlier is not flow else None
            refusals = [f for f in (flow_name_refusal(name), _duplicate(earlier) if earlier else None) if f]
            if refusals:
                flow.findings = dumps(refusals)
            flows.append(flow)
            rows.append(flow.model_dump())
            events.record(session, flow.id, "received", account=arrival.account, channel=arrival.channel,
                          original_name=name, size=entry.size, sha256=entry.digest,
                          duplicate_of=earlier.id if earlier else None)
        if keys:
            session.execute(insert(IdempotencyKey.__table__), keys)
        if rows:
            session.execute(insert(Flow.__table__), rows)
    log.debug("flows_committed", flows=len(rows))
    return flows


def _firsts(session, arrivals: list[Arrival]) -> dict[tuple[str, str], Flow]:
    """The flows already committed under the idempotency keys of arrivals, by (account, key)."""
    wanted = {(a.account, a.idempotency_key) for a in arrivals if a.idempotency_key is not None}
    firsts = {}
    for account, key in wanted:
        first = session.get(IdempotencyKey, (account, key))
        if first is not None:
            firsts[(account, key)] = session.get(Flow, first.flow_id)
    return firsts


def _earliest(session, entries: list[_Entry]) -> dict[tuple[str, str], Flow]:
    """The first flow received of each (account, digest) of entries, where one was: they are duplicates of it."""
    earliest: dict[tuple[str, str], Flow] = {}
    for account in {e.arrival.account for e in entries}:
        digests = {e.digest for e in entries if e.arrival.account == account}
        for flow in session.exec(select(Flow).where(Flow.account == account, Flow.sha256.in_(digests))
                                 .order_by(Flow.received_at)):
            earliest.setdefault((account, flow.sha256), flow)
    return earliest


def _duplicate(earlier: Flow) -> Finding:
    return Finding(stage="admissibility", rule="FLOW-DUPLICATE",
                   message=f"Same content (SHA-256) as flow {earlier.id} received on "
                           f"{earlier.received_at:%Y-%m-%d %H:%M:%S} UTC as {earlier.original_name!r}; "
                           "the flow is not processed again.")
