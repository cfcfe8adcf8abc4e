"""What was acknowledged never changes: the store keeps a read-only copy of its own, every delivery checks it
against its SHA-256, and the zone channel waits for a writer that pauses mid-file."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time

from structlog.testing import capture_logs

from gateway.data.models import DeliveryState
from gateway.ingest.intake import Arrival, intake
from gateway.route.delivery import attempt
from tests.harness import REPORT_NS, SAMPLES, cli, inbox, outbox, renumber, wait_finished, wait_report

SUPPLIER, RECIPIENT = "acme", "mairie-exemple"
GOOD = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()


def _root(config_file):
    return config_file.parent


def _delivery(config_file, flow_id: str) -> dict:
    shown = wait_finished(config_file, flow_id)
    return next(d for d in shown["deliveries"] if d["kind"] == "invoice")


def test_a_sender_still_holding_the_file_cannot_change_what_is_delivered(config_file, app, running):
    """The file is taken while its writer still holds it open (as where no lease can tell): what the writer
    writes afterwards reaches neither the store nor any later delivery."""
    content = renumber(GOOD, "HELD-1")
    path = _root(config_file) / "held.xml"
    with open(path, "wb") as writer:
        writer.write(content)
        writer.flush()
        flow = intake(app, path, Arrival(SUPPLIER, "held.xml", "zone"))
        report = wait_report(_root(config_file), SUPPLIER, "held.xml")
        assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INTEGRE"
        writer.write(b"<!-- changed after the report -->")
        writer.flush()
    stored = app.store.path(flow.sha256)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == flow.sha256 == hashlib.sha256(content).hexdigest()
    assert stat.S_IMODE(stored.stat().st_mode) & 0o222 == 0  # read-only
    delivery = _delivery(config_file, flow.id)
    delivered = outbox(_root(config_file), RECIPIENT) / delivery["file_name"]
    delivered.unlink()
    assert attempt(app, delivery["id"]) is DeliveryState.DELIVERED  # a later attempt, as a retry makes it
    assert delivered.read_bytes() == content


def test_a_stored_copy_that_no_longer_matches_is_never_sent(config_file, app, running):
    content = renumber(GOOD, "TAMPERED-1")
    path = _root(config_file) / "tampered.xml"
    path.write_bytes(content)
    flow = intake(app, path, Arrival(SUPPLIER, "tampered.xml", "zone"))
    delivery = _delivery(config_file, flow.id)
    delivered = outbox(_root(config_file), RECIPIENT) / delivery["file_name"]
    delivered.unlink()
    stored = app.store.path(flow.sha256)
    os.chmod(stored, 0o644)
    stored.write_bytes(content.replace(b"TAMPERED", b"EVIL") + b" ")
    with capture_logs() as logs:
        assert attempt(app, delivery["id"]) is DeliveryState.DEAD
    dead = _delivery(config_file, flow.id)
    assert "SHA-256" in dead["last_error"] and not delivered.exists()
    assert any(line["event"] == "store_integrity_alarm" and line["sha256"] == flow.sha256 for line in logs)


def test_a_writer_pausing_mid_file_gets_one_flow_with_the_whole_file(config_file, running):
    """stable_interval is 0.05 s in the tests: pauses of 1.5 s would have cut the file twice without the
    check that no one holds it open for writing."""
    content = renumber(GOOD, "PAUSED-1")
    thirds = [content[:2000], content[2000:4000], content[4000:]]
    target = inbox(_root(config_file), SUPPLIER) / "paused.xml"
    with open(target, "wb") as writer:
        for n, part in enumerate(thirds):
            writer.write(part)
            writer.flush()
            if n < 2:
                time.sleep(1.5)  # the sender's pause itself, what this test is about
                assert target.exists(), "taken while its writer held it open"
    report = wait_report(_root(config_file), SUPPLIER, "paused.xml")
    assert report.findtext("r:flow/r:state", namespaces=REPORT_NS) == "INTEGRE"
    mine = [f for f in json.loads(cli(config_file, "flows", "list", "--json")) if f["original_name"] == "paused.xml"]
    assert len(mine) == 1 and mine[0]["size"] == len(content)
    assert mine[0]["sha256"] == hashlib.sha256(content).hexdigest()


def test_store_files_are_read_only(app):
    digest = app.store.put(b"<x/>")
    assert stat.S_IMODE(app.store.path(digest).stat().st_mode) == 0o444
    source = app.settings.spool_dir / "copy-me"
    source.write_bytes(b"<y/>")
    digest, size = app.store.put_file(source)
    assert size == 4 and stat.S_IMODE(app.store.path(digest).stat().st_mode) == 0o444
    assert not os.path.samefile(source, app.store.path(digest))  # a copy, never a link


def test_a_file_that_changed_since_it_was_seen_still_is_put_back(app):
    path = inbox(app.settings.gateway.data_dir.parent, SUPPLIER) / "moved.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(GOOD)
    st = os.stat(path)
    assert intake(app, path, Arrival(SUPPLIER, "moved.xml", "zone"), expected=(st.st_size - 1, st.st_mtime_ns)) is None
    assert path.read_bytes() == GOOD and not list(app.settings.spool_dir.iterdir())
    assert intake(app, path, Arrival(SUPPLIER, "moved.xml", "zone"), expected=(st.st_size, st.st_mtime_ns)) is not None
    assert not path.exists()
