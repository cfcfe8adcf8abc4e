"""The database goes away under load. PostgreSQL restarted twice (`pg_ctl restart -m fast`, then `-m
immediate`) and stopped for 20 s once while 1,000 flows stream in: every gateway process stays up, says
once that the database is unreachable and once that it is back, and at the end every flow is final with
one acknowledgement and one report, each invoice delivered once. SQLite: another program holding the
database's write lock for 30 s slows the gateway and loses nothing."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from gateway.data.models import FINAL_STATES, Flow
from tests.harness import (
    SAMPLES,
    GatewayProcess,
    drop,
    files,
    load_samples,
    outbox,
    renumber,
    rows,
    wait_for,
    write_config,
)
from tests.postgres import PostgresServer, binaries
from tests.web_harness import client, start, token

pytestmark = pytest.mark.slow  # the database locked, restarted and stopped under a stream of flows

SUPPLIER, RECIPIENT = "acme", "mairie-exemple"
GOOD = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
BAD = (SAMPLES / "flows" / "reject-structure-unknown.xml").read_bytes()  # routed nowhere: rejected
OVERRIDES = {"sftp": {"enabled": False}, "validate": {"processes": 1}, "ingest": {"recover_interval": 1.0}}
ROLES = ("ingest,deliver,web", "worker")


def _contents(count: int, prefix: str) -> dict[str, bytes]:
    """count flows, one in ten rejected (routed nowhere: nothing to deliver)."""
    return {f"{prefix}-{i:04d}.xml": renumber(BAD if i % 10 == 0 else GOOD, f"{prefix}-{i:04d}".upper())
            for i in range(count)}


def _accepted(contents: dict[str, bytes]) -> int:
    return sum(1 for i in range(len(contents)) if i % 10)


def _stream(root: Path, contents: dict[str, bytes], per_second: float, stop: threading.Event) -> threading.Thread:
    """Drop the flows into the supplier's zone at a steady rate, in a thread."""
    def run() -> None:
        start = time.monotonic()
        for i, (name, content) in enumerate(contents.items()):
            if stop.wait(max(0.0, start + i / per_second - time.monotonic())):
                return
            drop(root, SUPPLIER, name, content)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _log_events(log: Path) -> Counter:
    """How many lines of each event and level a process logged, tracebacks counted apart."""
    seen = Counter()
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        seen[(entry.get("event"), entry.get("level"))] += 1
        seen["tracebacks"] += "exception" in entry
        if "exception" in entry:  # the last line of each, shown by a failing assertion
            seen[f"{entry['event']}: {entry['exception'].strip().splitlines()[-1]}"] += 1
    return seen


def _check_everything_once(root: Path, config: Path, contents: dict[str, bytes], accepted: int) -> None:
    """Every flow final, one acknowledgement and one report each, each accepted invoice delivered once."""
    supplier_out = outbox(root, SUPPLIER)
    wait_for(lambda: len(files(supplier_out, ".report.xml")) >= len(contents), 300, "every report", 0.2)
    wait_for(lambda: len(files(outbox(root, RECIPIENT), ".xml")) >= accepted, 120, "every delivery", 0.2)
    flows = rows(config, Flow)
    assert len(flows) == len(contents)
    assert sorted(f.original_name for f in flows) == sorted(contents)
    assert [f.id for f in flows if f.state not in FINAL_STATES] == []
    assert len(files(supplier_out, ".ack.xml")) == len(contents)
    assert len(files(supplier_out, ".report.xml")) == len(contents)
    delivered = [p.read_bytes() for p in files(outbox(root, RECIPIENT), ".xml")]
    assert len(delivered) == accepted and len(set(delivered)) == accepted


def _run(config: Path, root: Path) -> tuple[list[GatewayProcess], str]:
    """The processes of ROLES, and the base URL of the web one."""
    processes = [GatewayProcess(config, "--role", roles, log=root / f"{roles.split(',')[0]}.log") for roles in ROLES]
    url = start(processes[0])
    for process in processes[1:]:
        process.start()
        wait_for(process.started, 60, "the gateway's start")
    return processes, url


def _alive(processes: list[GatewayProcess]) -> bool:
    return all(p.proc.poll() is None for p in processes)


def _watch_alive(processes: list[GatewayProcess], seconds: float) -> None:
    """Check every half second, for the outage's whole length, that no process has exited."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        assert _alive(processes), "a process exited during the outage"
        time.sleep(0.5)


def _deposit(api: httpx.Client, name: str, content: bytes, key: str) -> httpx.Response:
    return api.post("/api/v1/flows", params={"name": name}, content=content, headers={"Idempotency-Key": key})


@pytest.mark.timeout(900)
def test_postgresql_restarted_and_stopped_under_a_stream_of_flows(tmp_path):
    bindir = binaries()
    if bindir is None:
        pytest.skip("PostgreSQL's server is not installed (apt-get install postgresql)")
    server = PostgresServer(bindir, durable=True).start()
    try:
        database = server.create_database()
        config = write_config(tmp_path, OVERRIDES, server.url(database))
        load_samples(config)
        contents = _contents(1000, "pg")
        bearer = token(config, SUPPLIER)
        processes, url = _run(config, tmp_path)
        stop = threading.Event()
        streaming = _stream(tmp_path, contents, 25.0, stop)
        try:
            reports = lambda: len(files(outbox(tmp_path, SUPPLIER), ".report.xml"))  # noqa: E731
            wait_for(lambda: reports() >= 100, 120, "the first reports", 0.1)
            server.restart("fast")
            wait_for(lambda: reports() >= 250, 120, "reports after a fast restart", 0.1)
            server.restart("immediate")
            wait_for(lambda: reports() >= 400, 120, "reports after an immediate restart", 0.1)
            server.down("fast")
            stopped = time.monotonic()
            api_name, api_content = "pg-api.xml", renumber(GOOD, "PG-API")
            with client(url, bearer) as api:
                refused = api.get("/api/v1/flows")  # the API says the database is away, and to come back
                assert refused.status_code == 503, refused.text
                assert refused.json()["type"] == "urn:gateway:problem:database-unavailable"
                assert int(refused.headers["Retry-After"]) > 0
                assert _deposit(api, api_name, api_content, "outage-1").status_code == 503
                _watch_alive(processes, 20 - (time.monotonic() - stopped))  # the outage itself: 20 s
                server.up()
                taken = wait_for(lambda: (r := _deposit(api, api_name, api_content, "outage-1")).status_code == 202
                                 and r, 60, "the deposit taken once the database is back", 0.5)
                again = _deposit(api, api_name, api_content, "outage-1")  # retried once more: the same flow
                assert again.status_code == 200 and again.json()["flow_id"] == taken.json()["flow_id"]
            streaming.join(300)
            accepted = _accepted(contents) + 1
            contents[api_name] = api_content
            _check_everything_once(tmp_path, config, contents, accepted)
            assert _alive(processes), "every process stayed up"
        finally:
            stop.set()
            codes = [p.stop() for p in processes]
        assert codes == [0] * len(processes)
        for process in processes:
            seen = _log_events(process.log)
            # three outages: each said once when it began and once when it ended, without tracebacks
            assert seen[("database_unavailable", "error")] == 3, (process.log, seen)
            assert seen[("database_recovered", "info")] == 3, (process.log, seen)
            assert seen["tracebacks"] == 0, (process.log, seen)
    finally:
        server.stop()


@pytest.mark.timeout(600)
def test_sqlite_write_lock_held_for_30_seconds_slows_and_loses_nothing(tmp_path):
    config = write_config(tmp_path, OVERRIDES)
    load_samples(config)
    contents = _contents(300, "lite")
    processes, _url = _run(config, tmp_path)
    stop = threading.Event()
    try:
        streaming = _stream(tmp_path, contents, 10.0, stop)
        reports = lambda: len(files(outbox(tmp_path, SUPPLIER), ".report.xml"))  # noqa: E731
        wait_for(lambda: reports() >= 50, 120, "the first reports", 0.1)
        holder = sqlite3.connect(tmp_path / "var" / "gateway.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another program (a backup, an operator's sqlite3) holds the lock
        try:
            _watch_alive(processes, 30)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        streaming.join(300)
        _check_everything_once(tmp_path, config, contents, _accepted(contents))
        assert _alive(processes), "every process stayed up"
    finally:
        stop.set()
        codes = [p.stop() for p in processes]
    assert codes == [0] * len(processes)
    for process in processes:
        assert _log_events(process.log)["tracebacks"] == 0, process.log
