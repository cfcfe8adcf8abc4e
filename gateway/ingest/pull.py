"""Remote collection (pull): the files an account leaves on its own SFTP server, taken as flows.

A remote file is taken once it has a final name and its size and time were the same on two
consecutive polls (a file still being written changes between them). It is downloaded into the
spool under a hidden name and handed to intake, the one door of every channel; only once intake
has committed its flow is the remote copy deleted or moved away. Each file taken is recorded before
intake and before the remote copy is touched, so a remote file is never taken twice: if removing
it fails, or the gateway stops first, the next poll finds the record and only retries the removal.
"""

from __future__ import annotations

import hashlib
import posixpath
import secrets
import stat

import paramiko
from sqlmodel import select, update

from gateway.app import App
from gateway.data.db import session_scope
from gateway.data.models import Collected, Endpoint, Flow
from gateway.engine import locks
from gateway.ingest.intake import Arrival, intake
from gateway.ingest.watcher import is_final_name
from gateway.ops.log import log
from gateway.remote.client import RemoteRefused, classify
from gateway.remote.endpoints import DELETE, MOVE, location

CHANNEL = "sftp-pull"

Listing = dict[str, tuple[int, int]]  # remote name -> (size, mtime)


def poll(app: App, endpoint: Endpoint, previous: Listing) -> Listing:
    """Take the files that held still since the previous listing; return what is left to watch."""
    waiting: Listing = {}
    with app.remote.session(endpoint) as sftp:
        listing = _list(sftp, endpoint.directory)
        for name, seen in listing.items():
            record = _pending(app, endpoint, name, seen)
            if record is None and previous.get(name) != seen:
                waiting[name] = seen
            else:
                _handle(app, sftp, endpoint, name, seen, record)
    _forget_gone(app, endpoint, set(listing))
    return waiting


def _list(sftp: paramiko.SFTPClient, directory: str) -> Listing:
    """Regular files under final names, with their size and modification time."""
    return {a.filename: (a.st_size or 0, a.st_mtime or 0) for a in sftp.listdir_attr(directory)
            if is_final_name(a.filename) and a.st_mode is not None and stat.S_ISREG(a.st_mode)}


def _handle(app: App, sftp: paramiko.SFTPClient, endpoint: Endpoint, name: str, seen: tuple[int, int],
            record: Collected | None) -> None:
    """Take the file unless taken already, then remove it; a file the server refuses to give or remove is
    left for the next poll without stopping this one (a dropped connection does stop it)."""
    try:
        record = record or _take(app, sftp, endpoint, name, seen)
        if record is not None:
            _remove(app, sftp, endpoint, record)
    except Exception as exc:  # a remote refusal leaves the file for the next poll; the rest is raised
        error = classify(exc, location(endpoint, name))
        if not isinstance(error, RemoteRefused):
            raise
        log.warning("pull_file_failed", account=endpoint.account, error=str(error))


def _take(app: App, sftp: paramiko.SFTPClient, endpoint: Endpoint, name: str,
          seen: tuple[int, int]) -> Collected | None:
    """Download the file into the spool and hand it to intake; None if it changed meanwhile."""
    local = app.settings.spool_dir / f".pull-{secrets.token_hex(8)}.tmp"  # recover() clears those of a crash
    with locks.scratch(local) as fd:
        with open(fd, "wb", closefd=False) as fh:
            size = sftp.getfo(posixpath.join(endpoint.directory, name), fh)
        if size != seen[0]:
            log.info("pull_file_changed", account=endpoint.account, remote=location(endpoint, name))
            return None
        record = _record(app, endpoint, name, seen, _sha256(fd))
        flow = intake(app, local, Arrival(account=endpoint.account, original_name=name, channel=CHANNEL))
        if flow is None:
            raise RuntimeError(f"the download of {name} left the spool before intake took it")
        _link(app, record, flow.id)
        log.info("pull_collected", account=endpoint.account, remote=location(endpoint, name), size=size,
                 flow_id=flow.id)
        return record


def _remove(app: App, sftp: paramiko.SFTPClient, endpoint: Endpoint, record: Collected) -> None:
    """Delete or move the remote copy of a file taken; one already gone counts as removed."""
    path = posixpath.join(endpoint.directory, record.name)
    try:
        if endpoint.after == DELETE:
            sftp.remove(path)
        else:
            sftp.posix_rename(path, posixpath.join(endpoint.after.removeprefix(MOVE), record.name))
    except OSError:
        if _exists(sftp, path):  # a failed move answers ENOENT for a missing target folder too
            raise
    with session_scope(app.engine) as session:
        session.get_one(Collected, record.id).removed = True
    log.info("pull_removed", account=endpoint.account, remote=location(endpoint, record.name),
             after=endpoint.after, flow_id=record.flow_id)


def _pending(app: App, endpoint: Endpoint, name: str, seen: tuple[int, int]) -> Collected | None:
    """The record of this very file if it was taken already (its remote copy not yet removed).

    A record without flow is one whose intake a crash interrupted: if the flow was committed after all
    (recover() finishes an intake at start), the record is completed; otherwise it is dropped and the
    file taken again.
    """
    with session_scope(app.engine) as session:
        record = session.exec(select(Collected).where(
            Collected.account == endpoint.account, Collected.location == location(endpoint),
            Collected.name == name, Collected.size == seen[0], Collected.mtime == seen[1],
            Collected.removed.is_(False))).first()
        if record is None or record.flow_id is not None:
            return record
        record.flow_id = session.exec(select(Flow.id).where(
            Flow.account == record.account, Flow.sha256 == record.sha256, Flow.channel == CHANNEL,
            Flow.original_name == name, Flow.received_at >= record.collected_at)).first()
        if record.flow_id is None:
            session.delete(record)
            return None
        return record


def _record(app: App, endpoint: Endpoint, name: str, seen: tuple[int, int], sha256: str) -> Collected:
    with session_scope(app.engine) as session:
        record = Collected(account=endpoint.account, location=location(endpoint), name=name, size=seen[0],
                           mtime=seen[1], sha256=sha256)
        session.add(record)
    return record


def _link(app: App, record: Collected, flow_id: str) -> None:
    with session_scope(app.engine) as session:
        session.get_one(Collected, record.id).flow_id = record.flow_id = flow_id


def _forget_gone(app: App, endpoint: Endpoint, listed: set[str]) -> None:
    """Records whose remote copy is no longer listed are done: removed by us (a crash may have come before
    we noted it) or by someone else. A new file of the same name is then a new file."""
    with session_scope(app.engine) as session:
        session.execute(update(Collected).where(
            Collected.account == endpoint.account, Collected.location == location(endpoint),
            Collected.removed.is_(False), Collected.name.not_in(listed)).values(removed=True))


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.stat(path)
    except FileNotFoundError:
        return False
    return True


def _sha256(fd: int) -> str:
    digest = hashlib.sha256()
    with open(fd, "rb", closefd=False) as fh:
        fh.seek(0)
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
