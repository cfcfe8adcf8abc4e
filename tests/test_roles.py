"""`gateway run --role ...`: processes sharing one database and one data directory, each doing its part, and
the graceful stop (SIGTERM) that finishes or gives back what a process holds."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import Session, select
from structlog.testing import capture_logs

from gateway.data.models import FINAL_STATES, Delivery, Event, Flow
from gateway.data.models import Worker as WorkerRow
from gateway.engine import locks
from gateway.ingest.intake import Arrival, new_flow_id, recover
from gateway.ingest.watcher import ZoneWatcher
from tests.harness import (
    REPO,
    SAMPLES,
    GatewayProcess,
    ack_for_name,
    cli,
    drop,
    files,
    inbox,
    load_samples,
    outbox,
    renumber,
    rows,
    wait_for,
    write_config,
)
from tests.sftp_harness import password_sftp

pytestmark = pytest.mark.slow  # gateway processes of each role, started, stopped and signalled

SUPPLIER, RECIPIENT = "acme", "mairie-exemple"
PASSWORD = "acme-roles-1"
GOOD = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
BAD = (SAMPLES / "flows" / "reject-structure-unknown.xml").read_bytes()
ONE_VALIDATOR = {"validate": {"processes": 1}}  # the machine is shared: one validator process per worker process


def _config(root: Path, database_url: str | None, overrides: dict | None = None) -> Path:
    config = write_config(root, {**ONE_VALIDATOR, **(overrides or {})}, database_url)
    load_samples(config)
    return config


def _pid(event: Event) -> int:
    return int(json.loads(event.detail)["by"].rsplit(":", 1)[1])


def _children(pid: int) -> list[int]:
    """The processes pid started."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _validators(process: GatewayProcess) -> list[int]:
    """The processes a gateway spawned to validate: all it spawned but its SFTP server's (multiprocessing's
    resource tracker is not spawned)."""
    sftp = {e["pid"] for e in _log_lines(process.log) if e["event"] == "sftp_process_started"}
    return [pid for pid in _children(process.proc.pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes() and pid not in sftp]


def _sftp_processes(process: GatewayProcess) -> list[int]:
    """The SFTP server's processes a gateway started (gateway.ingest.sftp.process), still running."""
    started = [e["pid"] for e in _log_lines(process.log) if e["event"] == "sftp_process_started"]
    return [pid for pid in started if pid in _children(process.proc.pid)]


def _log_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _sftp_port(log: Path) -> int:
    started = wait_for(lambda: next((e for e in _log_lines(log) if e["event"] == "sftp_started"), None) if
                       log.exists() else None, 60, "the SFTP server started")
    return started["port"]


def _reported(root: Path, count: int) -> None:
    wait_for(lambda: len(files(outbox(root, SUPPLIER), ".report.xml")) >= count, 120, f"{count} reports", 0.1)


def _spool_left(root: Path) -> list[str]:
    return sorted(os.listdir(root / "var" / "spool"))


def _temporaries_left(root: Path) -> list[Path]:
    """Dot-files (uploads, atomic writes) in the zones, the spool or the store: what a clean stop never leaves."""
    return list((root / "var").rglob(".*"))


def test_sftp_ingest_and_worker_roles_in_their_own_processes(tmp_path, database_url):
    """An SFTP front, an ingest process and a worker process share one configuration: uploads are taken by
    the first, zone drops by the second, all processed and delivered by the third, as the events say; only
    the worker runs validator processes; SIGTERM in the middle of an upload stops the front cleanly."""
    # the watcher waits long enough for the front's own intake to take its uploads first
    config = _config(tmp_path, database_url, {"sftp": {"enabled": True, "port": 0, "auth_delay": 0.05},
                                               "ingest": {"stable_interval": 1.0}})
    cli(config, "accounts", "add", SUPPLIER, "--update", "--role", "supplier", "--password", PASSWORD)
    front = GatewayProcess(config, "--role", "sftp", log=tmp_path / "sftp.log")
    ingest = GatewayProcess(config, "--role", "ingest", log=tmp_path / "ingest.log")
    worker = GatewayProcess(config, "--role", "worker,deliver", log=tmp_path / "worker.log")
    for process in (front, ingest, worker):
        process.start()
    try:
        with password_sftp(_sftp_port(front.log), SUPPLIER, PASSWORD) as sftp:
            for n in range(3):
                sftp.putfo(io.BytesIO(renumber(GOOD, f"ROLE-SFTP-{n}")), f"/in/sftp-{n}.xml")
        for n in range(3):
            drop(tmp_path, SUPPLIER, f"zone-{n}.xml", renumber(GOOD, f"ROLE-ZONE-{n}"))
        _reported(tmp_path, 6)
        wait_for(lambda: len(files(outbox(tmp_path, RECIPIENT), ".xml")) >= 6, what="six deliveries")
        assert _validators(front) == [] and _validators(ingest) == [] and _validators(worker) != []
        assert len(_sftp_processes(front)) == 1, "the SFTP server runs in a child of the front"

        with password_sftp(_sftp_port(front.log), SUPPLIER, PASSWORD) as sftp:
            upload = sftp.open("/in/cut.xml", "w")
            upload.write(GOOD[:1000])
            upload.flush()
            wait_for(lambda: any(p.name.startswith(".sftp-upload-") for p in inbox(tmp_path, SUPPLIER).iterdir()),
                     what="the partial upload on disk")
            began = time.monotonic()
            assert front.stop() == 0
            assert time.monotonic() - began < 10
    finally:
        codes = [process.stop() for process in (front, ingest, worker)]
    assert codes == [0, 0, 0]

    assert list(inbox(tmp_path, SUPPLIER).iterdir()) == [], "the cut upload deleted, nothing else left"
    flows = {f.id: f for f in rows(config, Flow)}
    assert sorted(f.original_name for f in flows.values()) == [*(f"sftp-{n}.xml" for n in range(3)),
                                                               *(f"zone-{n}.xml" for n in range(3))]
    assert all(f.state in FINAL_STATES for f in flows.values())
    by = {(flows[e.flow_id].channel, e.kind, _pid(e)) for e in rows(config, Event)}
    pids = {"sftp": front.proc.pid, "zone": ingest.proc.pid}
    for channel, pid in pids.items():
        assert {p for c, kind, p in by if c == channel and kind in ("received", "acknowledged")} == {pid}
    assert {p for _c, kind, p in by if kind in ("flow_finished", "delivered")} == {worker.proc.pid}
    expected = {"sftp_upload_discarded"}  # the cut upload
    for process in (front, ingest, worker):
        assert [e for e in _log_lines(process.log)
                if e["level"] in ("warning", "error") and e["event"] not in expected] == [], process.log
    assert rows(config, WorkerRow) == [] and _spool_left(tmp_path) == []


def test_sigterm_finishes_work_in_hand_and_a_new_process_completes_the_rest(tmp_path, database_url):
    """SIGTERM while flows are being processed: exit 0 within the grace, each flow either finished or not
    begun, no lease or worker row left, nothing half-written; a new process then completes every flow."""
    config = _config(tmp_path, database_url, {"worker": {"threads": 2}})
    contents = {f"stop-{i:03d}.xml": renumber(BAD if i % 5 == 0 else GOOD, f"STOP-{i:03d}") for i in range(80)}
    for name, content in contents.items():
        drop(tmp_path, SUPPLIER, name, content)
    gateway = GatewayProcess(config)
    gateway.start()
    try:
        _reported(tmp_path, 5)
        began = time.monotonic()
        assert gateway.stop() == 0
        assert time.monotonic() - began < 15
    finally:
        gateway.stop()

    progress = Counter(e.flow_id for e in rows(config, Event) if e.kind not in ("received", "acknowledged"))
    flows = rows(config, Flow)
    half_done = [f.id for f in flows if f.state not in FINAL_STATES and progress[f.id]]
    assert half_done == [], "a flow in hand is finished before the process exits"
    assert [f.id for f in flows if f.lease_owner] == []
    assert [d.id for d in rows(config, Delivery) if d.lease_owner] == []
    assert rows(config, WorkerRow) == []
    assert _spool_left(tmp_path) == [] and _temporaries_left(tmp_path) == []

    again = GatewayProcess(config)
    again.start()
    try:
        _reported(tmp_path, len(contents))
        accepted = sum(1 for i in range(len(contents)) if i % 5)
        wait_for(lambda: len(files(outbox(tmp_path, RECIPIENT), ".xml")) >= accepted, 60, "every delivery")
    finally:
        assert again.stop() == 0
    flows = rows(config, Flow)
    assert len(flows) == len(contents) and all(f.state in FINAL_STATES for f in flows)
    finished = Counter(e.flow_id for e in rows(config, Event) if e.kind == "flow_finished")
    assert set(finished.values()) == {1} and len(finished) == len(contents)
    assert _spool_left(tmp_path) == [] and _temporaries_left(tmp_path) == []


def test_two_watchers_racing_for_the_same_files_take_each_once_and_the_loser_says_nothing(app):
    """Two zone watchers (two ingest processes' scans) see the same held-still files at the same moment:
    the atomic rename into the spool makes one winner per file; the loser logs no warning or error."""
    names = [f"race-{i:03d}.xml" for i in range(60)]
    root = app.settings.gateway.data_dir.parent
    for i, name in enumerate(names):
        drop(root, SUPPLIER, name, renumber(GOOD, f"RACE-{i:03d}"))
    watchers = [ZoneWatcher(app), ZoneWatcher(app)]
    for watcher in watchers:
        for path in watcher.scan():
            watcher.hint(path)
        watcher.tick(0.0)  # sizes and times noted; held still from now on
    start, taken = threading.Barrier(2), [0, 0]

    def race(n: int) -> None:
        start.wait()
        taken[n] = watchers[n].tick(60.0)

    with capture_logs() as logs:
        threads = [threading.Thread(target=race, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sum(taken) == len(names)
    with Session(app.engine) as session:
        received = sorted(f.original_name for f in session.exec(select(Flow)))
    assert received == names
    assert [e for e in logs if e["log_level"] in ("warning", "error")] == []
    assert list(inbox(root, SUPPLIER).iterdir()) == [] and _spool_left(root) == []


# Another process in the middle of an intake: its spool entry (claimed file, sidecar) and a download, held.
_HOLDER = """
import json, sys
from pathlib import Path
from gateway.engine import locks
spool, flow_id, arrival, content = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
with locks.create(spool / f"{flow_id}.json", arrival.encode()), locks.scratch(spool / ".pull-held.tmp"):
    (spool / f"{flow_id}.data").write_bytes(content.read_bytes())
    print("held", flush=True)
    sys.stdin.read()
"""


def test_recovery_leaves_what_a_live_process_holds_and_finishes_a_dead_ones(app, tmp_path):
    """Spool recovery, as every ingest process runs it now and then, skips the entries another process (or
    another thread of this one) is working on, and finishes them once that process has died."""
    spool, flow_id, root = app.settings.spool_dir, new_flow_id(), app.settings.gateway.data_dir.parent
    arrival = json.dumps(Arrival(SUPPLIER, "held.xml", "zone").__dict__)
    content = tmp_path / "held.src"
    content.write_bytes(renumber(GOOD, "HELD-1"))
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(spool), flow_id, arrival, str(content)],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n"
        mine = spool / f"{new_flow_id()}.json"
        with locks.create(mine, arrival.encode()):  # this process's own intake, in another thread
            assert recover(app) == 0
            assert mine.exists()
        assert sorted(os.listdir(spool)) == sorted([".pull-held.tmp", f"{flow_id}.data", f"{flow_id}.json",
                                                    mine.name])
    finally:
        holder.kill()
        holder.wait()
    assert recover(app) == 1  # the dead one's entry admitted; this one's, never claimed, dropped
    assert _spool_left(root) == []
    assert ack_for_name(root, SUPPLIER, "held.xml") is not None
