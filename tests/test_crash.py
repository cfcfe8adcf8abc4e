"""Crash safety: a stream of flows of every kind dropped while `gateway run` is SIGKILLed at random moments and
restarted each time; at the end nothing is lost, nothing doubled, no step skipped.

The issue's numbers by default: 1,000 flows, 20 kills. GATEWAY_CRASH_FLOWS and GATEWAY_CRASH_KILLS change
them; GATEWAY_CRASH_SEED replays a run (the seed of each run is printed, and named by its failures).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lxml import etree

from gateway.data.models import Delivery, DeliveryState, Event, Flow, FlowState, Invoice
from gateway.data.store import sha256
from tests import crash_flows
from tests.crash_flows import Dropped
from tests.harness import (
    ACK_NS,
    REPORT_NS,
    GatewayProcess,
    drop,
    files,
    inbox,
    load_samples,
    outbox,
    rows,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow  # flows streamed while gateway run is SIGKILLed: minutes

COUNT = int(os.environ.get("GATEWAY_CRASH_FLOWS", "1000"))
KILLS = int(os.environ.get("GATEWAY_CRASH_KILLS", "20"))
WINDOW = 40  # flows dropped ahead of the last report, so the stream goes on as long as the processing does
PATIENCE = 300.0  # seconds the gateway may take to make progress between two kills, or to finish
SUPPLIER = "acme"
STATUS_RETURN = ".cdar.xml"  # the supplier account's status-return format
DELIVERY_TRACK = {"delivered", "delivery_failed", "delivery_dead",
                  "status_changed:MISE_A_DISPOSITION"}


def _count(directory: Path, suffix: str) -> int:
    with os.scandir(directory) as entries:
        return sum(e.name.endswith(suffix) and not e.name.startswith(".") for e in entries)


def _stream(root: Path, dropped: list[Dropped], reported: Callable[[], int], stop: threading.Event) -> None:
    """Drop every flow, at most WINDOW ahead of the reports, whether the gateway is up or not."""
    for n, flow in enumerate(dropped):
        wait_for(lambda: stop.is_set() or reported() >= n - WINDOW, PATIENCE, f"report {n - WINDOW}", 0.05)
        if stop.is_set():
            return
        drop(root, SUPPLIER, flow.name, flow.content)


@pytest.mark.timeout(1200)  # the suite's 300 s is for tests of one thing
def test_sigkill_at_random_moments_loses_nothing_doubles_nothing_skips_nothing(tmp_path, database_url):
    seed = int(os.environ.get("GATEWAY_CRASH_SEED") or random.randrange(1 << 32))
    print(f"crash test: {COUNT} flows, {KILLS} kills, GATEWAY_CRASH_SEED={seed}")
    rng = random.Random(seed)
    dropped = crash_flows.stream(COUNT, rng)
    # one validator process: a worker thread uses one at a time, and each restart compiles the rules afresh
    config = write_config(tmp_path, {"worker": {"lease_seconds": 1.5}, "validate": {"processes": 1}}, database_url)
    load_samples(config)
    root, started = tmp_path, time.monotonic()
    reported = lambda: _count(outbox(root, SUPPLIER), ".report.xml")  # noqa: E731

    gateway = GatewayProcess(config)
    gateway.start()
    wait_for(outbox(root, SUPPLIER).is_dir, PATIENCE, "the zones the gateway makes at start")
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        streaming = pool.submit(_stream, root, dropped, reported, stop)
        try:
            for moment in sorted(rng.sample(range(1, COUNT), KILLS)):
                wait_for(lambda: reported() >= moment, PATIENCE, f"report {moment} (seed {seed})", 0.05)
                stop.wait(rng.uniform(0, 0.5))  # a random moment after that report, not synchronisation
                gateway.kill()
                gateway.start()
            streaming.result()
            wait_for(lambda: _delivered_all(root, dropped), PATIENCE, f"every report and delivery (seed {seed})", 0.2)
        finally:
            stop.set()
            stopped = gateway.stop()
    assert stopped == 0
    print(f"crash test on {'postgresql' if database_url else 'sqlite'}: {time.monotonic() - started:.0f} s")

    _check_everything(config, dropped, f"seed {seed}")
    _check_log(tmp_path / "gateway.log")


BATCH = 12  # flows claimed and recorded together in the crash-point test


@pytest.mark.parametrize("point", ["batch_judged", "batch_reports_written"])
def test_sigkill_while_a_batch_is_recorded_loses_nothing_doubles_nothing(tmp_path, database_url, point):
    """Flows waiting together are claimed as one batch; the process dies where the batch's verdicts are committed
    and nothing delivered yet, or where its deliveries, status-returns and reports are written and not yet
    recorded (gateway.engine.faults); restarted, it finishes each flow once: one acknowledgement and one report each,
    every invoice delivered once, every timeline whole."""
    dropped = crash_flows.stream(BATCH, random.Random(BATCH))
    config = write_config(tmp_path, {"worker": {"lease_seconds": 1.5, "batch": BATCH}, "validate": {"processes": 1}},
                          database_url)
    load_samples(config)
    root = tmp_path
    intake = GatewayProcess(config, "--role", "ingest")  # every flow acknowledged and waiting before any claim
    intake.start()
    wait_for(outbox(root, SUPPLIER).is_dir, PATIENCE, "the zones the gateway makes at start")
    for flow in dropped:
        drop(root, SUPPLIER, flow.name, flow.content)
    wait_for(lambda: _count(outbox(root, SUPPLIER), ".ack.xml") >= BATCH, PATIENCE, "every acknowledgement")
    assert intake.stop() == 0

    crashing = GatewayProcess(config, env={"GATEWAY_CRASH_AT": point})
    crashing.start()
    assert crashing.proc.wait(timeout=PATIENCE) == -signal.SIGKILL
    flows, invoices, _deliveries, _events = _load(config)
    assert {flow.state for flow in flows} == {FlowState.RECU}, "killed before any flow of the batch was recorded"
    judged = [flow for flow in flows if flow.id in invoices or json.loads(flow.findings or "[]")]
    assert len(judged) > BATCH // 2, "the batch was judged as one"
    if point == "batch_reports_written":
        assert _count(outbox(root, SUPPLIER), ".report.xml") > BATCH // 2, "its reports were written"

    gateway = GatewayProcess(config)
    gateway.start()
    try:
        wait_for(lambda: _delivered_all(root, dropped), PATIENCE, "every report and delivery", 0.2)
    finally:
        assert gateway.stop() == 0
    _check_everything(config, dropped, f"killed at {point}")


def _check_everything(config: Path, dropped: list[Dropped], why: str) -> None:
    """The zones, then each dropped flow's verdicts, timeline and deliveries; why names the run in failures."""
    root = config.parent
    _check_zones(root, dropped)
    flows, invoices, deliveries, events = _load(config)
    by_name = {flow.original_name: flow for flow in flows}
    assert len(flows) == len(dropped) and by_name.keys() == {d.name for d in dropped}, why
    for expected in dropped:
        flow = by_name[expected.name]
        context = f"{expected.name} (flow {flow.id}, {why})"
        _check_verdicts(expected, flow, invoices.get(flow.id, []), context)
        _check_timeline(expected, events.get(flow.id, []), context)
        _check_deliveries(expected, deliveries.get(flow.id, []), events.get(flow.id, []), root, context)


def _delivered_all(root: Path, dropped: list[Dropped]) -> bool:
    """Every report written, every invoice in its recipient's zone, every status-return in the supplier's (a flow
    whose worker died after its judgement is finished by another, and the deliveries the dead one had leased
    are made by the delivery queue afterwards)."""
    documents = [d for flow in dropped for d in flow.documents]
    recipients = Counter(d.recipient for d in documents if d.recipient)
    status_returns = sum(2 if d.recipient else 1 for d in documents)  # DEPOSEE and MISE_A_DISPOSITION, or 213
    status_returns += len(dropped)  # and each flow's 500 or 501
    return (_count(outbox(root, SUPPLIER), ".report.xml") >= len(dropped)
            and _count(outbox(root, SUPPLIER), STATUS_RETURN) >= status_returns
            and all(_count(outbox(root, account), ".xml") >= n for account, n in recipients.items()))


def _check_zones(root: Path, dropped: list[Dropped]) -> None:
    """One acknowledgement and one report per dropped file, its report in the expected state, each accepted
    invoice in its recipient's zone exactly once and nothing else there, nothing left in the in/ or the spool."""
    assert list(inbox(root, SUPPLIER).iterdir()) == []
    assert list((root / "var" / "spool").iterdir()) == []
    supplier = outbox(root, SUPPLIER)
    acks = {p.name.removesuffix(".ack.xml"): etree.parse(str(p)).getroot() for p in files(supplier, ".ack.xml")}
    names = Counter(ack.findtext("a:originalName", namespaces=ACK_NS) for ack in acks.values())
    assert names == Counter(d.name for d in dropped), "each dropped file has exactly one acknowledgement"
    reports = {p.name.removesuffix(".report.xml"): p for p in files(supplier, ".report.xml")}
    assert reports.keys() == acks.keys(), "each acknowledged flow has exactly one report"
    states = {acks[flow_id].findtext("a:originalName", namespaces=ACK_NS):
              etree.parse(str(path)).getroot().findtext("r:flow/r:state", namespaces=REPORT_NS)
              for flow_id, path in reports.items()}
    assert states == {d.name: d.state.value for d in dropped}
    expected = {}
    for document in (d for flow in dropped for d in flow.documents if d.recipient):
        expected.setdefault(document.recipient, Counter())[document.content] += 1
    for account, contents in expected.items():
        assert Counter(p.read_bytes() for p in files(outbox(root, account), "")) == contents, account


def _load(config: Path):
    """Every flow, and by flow id its invoices, deliveries and events (in the order they were recorded)."""
    return rows(config, Flow), *(_by_flow(rows(config, model)) for model in (Invoice, Delivery, Event))


def _by_flow(rows) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row.flow_id, []).append(row)
    return grouped


def _check_verdicts(expected: Dropped, flow: Flow, invoices: list[Invoice], context: str) -> None:
    """The flow's state, its refusal, and each invoice's verdict, recipient and rejecting rule as dropped."""
    assert flow.state == expected.state and flow.acknowledged and flow.reported, context
    if expected.refusal:
        assert expected.refusal in [f["rule"] for f in json.loads(flow.findings)], context
    got = [(i.seq, i.name, i.verdict.value, i.recipient if i.verdict.value == "accepted" else None)
           for i in invoices]
    assert got == [(seq, d.name, "accepted" if d.recipient else "rejected", d.recipient)
                   for seq, d in enumerate(expected.documents, start=1)], context
    for invoice, document in zip(invoices, expected.documents, strict=True):
        fatal = [f["rule"] for f in json.loads(invoice.findings) if f["severity"] == "fatal"]
        assert (document.rule in fatal) if document.rule else not fatal, f"{context}: {invoice.name} {fatal}"


def _label(event: Event) -> tuple[str, int | None]:
    """An event as the timeline names it: its kind (a status change with its status), and its invoice's seq."""
    kind = event.kind
    if kind == "status_changed":
        kind += ":" + json.loads(event.detail)["status"]
    return kind, int(event.invoice_id.rsplit("-", 1)[1]) if event.invoice_id else None


def _check_timeline(expected: Dropped, events: list[Event], context: str) -> None:
    """No gap: the flow's own events are exactly, in order, those its processing records (Dropped.timeline),
    none missing and none repeated, whatever the kills interrupted and the restarts resumed."""
    track = [label for label in map(_label, events) if label[0] not in DELIVERY_TRACK]
    assert track == expected.timeline(), context


def _check_deliveries(expected: Dropped, deliveries: list[Delivery], events: list[Event], root: Path,
                      context: str) -> None:
    """Each delivery made once, with one `delivered` event after its invoice's verdict, never a failure: an
    accepted invoice to its recipient, then MISE_A_DISPOSITION; the status-returns of its DEPOSEE and
    MISE_A_DISPOSITION (or of its rejection), and the flow's own 500/501, in the supplier's zone, each file as its
    delivery recorded it."""
    labels = [(*_label(e), json.loads(e.detail).get("what")) for e in events]
    assert not [label for label in labels if label[0] in {"delivery_failed", "delivery_dead"}], context
    assert all(d.state is DeliveryState.DELIVERED for d in deliveries), context
    for seq, document in enumerate(expected.documents, start=1):
        verdict = labels.index(("invoice_accepted" if document.recipient else "invoice_rejected", seq, None))
        made = Counter(d.kind for d in deliveries if d.invoice_id and int(d.invoice_id.rsplit("-", 1)[1]) == seq)
        delivered = [(i, label[2]) for i, label in enumerate(labels) if label[:2] == ("delivered", seq)]
        assert all(i > verdict for i, _ in delivered), context
        assert Counter(what for _, what in delivered) == made, context
        assert made == (Counter(invoice=1, status=2) if document.recipient else Counter(status=1)), context
        if document.recipient:
            available = labels.index(("status_changed:MISE_A_DISPOSITION", seq, None))
            assert labels.count(("status_changed:MISE_A_DISPOSITION", seq, None)) == 1, context
            assert available > labels.index(("delivered", seq, "invoice")), context
    assert len([d for d in deliveries if d.invoice_id is None]) == 1, context  # the flow's 500/501, once
    for returned in (d for d in deliveries if d.kind == "status"):
        assert sha256((outbox(root, SUPPLIER) / returned.file_name).read_bytes()) == returned.sha256, context


def _check_log(log: Path) -> None:
    """JSON lines, but for the one a process was writing when SIGKILL struck and the plain line each start prints
    for a person; the lines of a flow's steps (gateway.data.events.step) name flow and account."""
    lines, torn = [], 0
    for line in log.read_text().splitlines():
        if line.startswith("gateway running ("):
            continue
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            torn += 1
    assert torn <= KILLS
    steps = [e for e in lines if e["event"] in {"flow_acknowledged", "flow_judged", "flow_delivered", "flow_reported"}]
    assert steps and all("flow_id" in e and e.get("account") for e in steps)
