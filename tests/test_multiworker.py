"""Several processes over one PostgreSQL database: one ingest process and three worker processes share
2,000 flows, one worker is SIGKILLed half-way; every flow ends, none is processed twice (checked from the
event table and from the zones), and the work was shared."""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import pytest
from lxml import etree

from gateway.data.models import FINAL_STATES, Event, Flow
from gateway.data.models import Worker as WorkerRow
from tests.harness import (
    ACK_NS,
    SAMPLES,
    GatewayProcess,
    files,
    inbox,
    load_samples,
    outbox,
    renumber,
    rows,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow  # three worker processes, one killed: about two minutes

COUNT = 2000
SUPPLIER, RECIPIENT = "acme", "mairie-exemple"
GOOD = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
BAD = (SAMPLES / "flows" / "reject-structure-unknown.xml").read_bytes()  # routed nowhere: rejected


def _contents() -> dict[str, bytes]:
    """COUNT single-invoice flows, one in ten rejected (nothing to deliver), each under its own number."""
    return {f"mw-{i:04d}.xml": renumber(BAD if i % 10 == 0 else GOOD, f"MW-{i:04d}") for i in range(COUNT)}


def _count(directory, suffix: str) -> int:
    with os.scandir(directory) as entries:
        return sum(e.name.endswith(suffix) and not e.name.startswith(".") for e in entries)


def _pid(event: Event) -> int:
    return int(json.loads(event.detail)["by"].rsplit(":", 1)[1])


@pytest.mark.timeout(900)
def test_three_workers_share_the_flows_and_one_killed_loses_and_doubles_nothing(tmp_path, database_url):
    if database_url is None:
        pytest.skip("several hosts share PostgreSQL; SQLite serves the processes of one host (test_roles)")
    overrides = {"worker": {"lease_seconds": 2.0, "poll_interval": 0.05}, "validate": {"processes": 1},
                 "ingest": {"recover_interval": 1.0}}
    config = write_config(tmp_path, overrides, database_url)
    load_samples(config)
    contents = _contents()
    for name, content in contents.items():  # written straight into in/: every file is whole before any start
        (inbox(tmp_path, SUPPLIER) / name).write_bytes(content)
    expected_deliveries = {c for i, c in enumerate(contents.values()) if i % 10}

    started = time.monotonic()
    ingest = GatewayProcess(config, "--role", "ingest,deliver", log=tmp_path / "ingest.log")
    workers = [GatewayProcess(config, "--role", "worker", log=tmp_path / f"worker-{n}.log") for n in range(3)]
    for process in (ingest, *workers):
        process.start()
    reports = lambda: _count(outbox(tmp_path, SUPPLIER), ".report.xml")  # noqa: E731
    try:
        wait_for(lambda: reports() >= COUNT // 2, 600, "half the reports", 0.1)
        workers[0].kill()
        wait_for(lambda: reports() >= COUNT, 600, "every report", 0.2)
        wait_for(lambda: _count(outbox(tmp_path, RECIPIENT), ".xml") >= len(expected_deliveries), 60,
                 "every delivery", 0.2)
    finally:
        codes = [process.stop() for process in (ingest, *workers[1:])]
    print(f"{COUNT} flows through 1 ingest and 3 worker processes in {time.monotonic() - started:.0f} s")
    assert codes == [0, 0, 0]

    assert list(inbox(tmp_path, SUPPLIER).iterdir()) == []
    acks = files(outbox(tmp_path, SUPPLIER), ".ack.xml")
    names = Counter(etree.parse(str(p)).getroot().findtext("a:originalName", namespaces=ACK_NS) for p in acks)
    assert names == Counter(contents.keys()), "each dropped file has exactly one acknowledgement"
    reported = {p.name.removesuffix(".report.xml") for p in files(outbox(tmp_path, SUPPLIER), ".report.xml")}
    assert reported == {p.name.removesuffix(".ack.xml") for p in acks}
    delivered = Counter(p.read_bytes() for p in files(outbox(tmp_path, RECIPIENT), ".xml"))
    assert set(delivered) == expected_deliveries and set(delivered.values()) == {1}

    flows, events, registered = rows(config, Flow), rows(config, Event), rows(config, WorkerRow)
    assert len(flows) == COUNT and all(f.state in FINAL_STATES for f in flows)
    assert all(f.lease_owner is None for f in flows)
    flow_ids = sorted(f.id for f in flows)
    for kind in ("received", "acknowledged", "report_written", "flow_finished"):
        assert sorted(e.flow_id for e in events if e.kind == kind) == flow_ids, f"one {kind} event per flow"
    judged = Counter(e.invoice_id for e in events if e.kind in ("invoice_accepted", "invoice_rejected"))
    assert len(judged) == COUNT and set(judged.values()) == {1}, "each invoice judged once"
    deliveries = Counter(e.invoice_id for e in events
                         if e.kind == "delivered" and json.loads(e.detail)["what"] == "invoice")
    assert len(deliveries) == len(expected_deliveries) and set(deliveries.values()) == {1}

    finishers = Counter(_pid(e) for e in events if e.kind == "flow_finished")
    assert len(finishers) >= 2 and set(finishers) <= {w.proc.pid for w in workers}, finishers
    assert {_pid(e) for e in events if e.kind == "received"} == {ingest.proc.pid}
    assert [r.id.split(":")[1] for r in registered] == [str(workers[0].proc.pid)], "the killed one's row is left"
