"""Crash safety: `gateway run` killed with SIGKILL while flows stream in, then restarted."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter

from lxml import etree

from gateway import config as config_module
from gateway.db import make_engine
from gateway.models import FINAL_STATES, Flow
from sqlmodel import Session, select
from tests.harness import (ACK_NS, SAMPLES, GatewayProcess, drop, files, inbox, load_samples, outbox, renumber,
                           wait_for, write_config)

SUPPLIER, RECIPIENT = "acme", "mairie-exemple"


def _stream(root, contents: dict[str, bytes], done: threading.Event) -> None:
    for name, content in contents.items():
        drop(root, SUPPLIER, name, content)
        done.wait(0.005)  # pacing of the stream, not synchronisation


def test_sigkill_while_processing_loses_nothing_and_duplicates_nothing(tmp_path, database_url):
    config = write_config(tmp_path, {"worker": {"lease_seconds": 1.5}}, database_url)
    load_samples(config)
    root = tmp_path
    good = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
    bad = (SAMPLES / "flows" / "reject-structure-unknown.xml").read_bytes()
    contents = {f"crash-{i:03d}.xml": renumber(bad if i % 5 == 0 else good, f"CRASH-{i:03d}") for i in range(120)}
    acks = lambda: files(outbox(root, SUPPLIER), ".ack.xml")  # noqa: E731
    reports = lambda: files(outbox(root, SUPPLIER), ".report.xml")  # noqa: E731

    gateway = GatewayProcess(config)
    gateway.start()
    stop = threading.Event()
    dropper = threading.Thread(target=_stream, args=(root, contents, stop))
    dropper.start()
    rng = random.Random(7)
    try:
        for threshold in sorted(rng.sample(range(5, 115), 6)):
            wait_for(lambda: len(acks()) >= threshold, 60, f"{threshold} acknowledgements")
            stop.wait(rng.uniform(0, 0.05))  # a random moment after the threshold, not synchronisation
            gateway.kill()
            gateway.start()
        dropper.join()
        wait_for(lambda: len(reports()) >= len(contents), 120, "every report")
        # a delivery cut off by a kill is retried once its lease has expired, after the report
        accepted = sum(1 for i in range(len(contents)) if i % 5)
        wait_for(lambda: len(files(outbox(root, RECIPIENT), ".xml")) >= accepted, 60, "every delivery")
    finally:
        stop.set()
        assert gateway.stop() == 0

    assert list(inbox(root, SUPPLIER).iterdir()) == []
    names = Counter(etree.parse(str(p)).getroot().findtext("a:originalName", namespaces=ACK_NS) for p in acks())
    assert names == Counter(contents.keys()), "each dropped file has exactly one acknowledgement"
    ack_ids = {p.name.removesuffix(".ack.xml") for p in acks()}
    assert ack_ids == {p.name.removesuffix(".report.xml") for p in reports()}

    delivered = Counter(p.read_bytes() for p in files(outbox(root, RECIPIENT), ".xml"))
    expected = {c for i, c in enumerate(contents.values()) if i % 5}
    assert set(delivered) == expected and set(delivered.values()) == {1}

    settings = config_module.load(config)
    engine = make_engine(settings.gateway.database_url)
    with Session(engine) as session:
        flows = session.exec(select(Flow)).all()
    engine.dispose()
    assert len(flows) == len(contents) and all(f.state in FINAL_STATES for f in flows)

    log_lines, torn = [], 0
    for line in (tmp_path / "gateway.log").read_text().splitlines():
        try:
            log_lines.append(json.loads(line))
        except json.JSONDecodeError:  # the line a process was writing when SIGKILL struck, at most one per kill
            torn += 1
    assert torn <= 6
    flow_events = [e for e in log_lines if e["event"] in {"received", "acknowledged", "report_written"}]
    assert flow_events and all("flow_id" in e and e.get("account") for e in flow_events)
