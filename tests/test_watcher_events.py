"""The zone watcher's file-system events: a file dropped into in/ is taken without waiting for the next scan."""

from __future__ import annotations

import threading

from sqlmodel import Session, select

from gateway import config as config_module
from gateway.app import App
from gateway.data.models import Flow
from gateway.ingest.watcher import ZoneWatcher
from tests.harness import SAMPLES, drop, load_samples, renumber, wait_for, write_config

GOOD = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()


def _received(app: App) -> list[str]:
    with Session(app.engine) as session:
        return sorted(f.original_name for f in session.exec(select(Flow)))


def test_a_file_dropped_between_scans_is_taken_on_its_event(tmp_path):
    config = write_config(tmp_path, {"ingest": {"scan_interval": 600.0, "stable_interval": 0.1}})
    load_samples(config)
    app = App.from_settings(config_module.load(config))
    drop(tmp_path, "acme", "first.xml", renumber(GOOD, "WATCH-1"))  # found by the scan at start
    watcher, stop = ZoneWatcher(app), threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: _received(app) == ["first.xml"], timeout=30, what="the first scan to take first.xml")
        # the next scan is 10 minutes away: only the event on acme's in/ can bring this one in
        drop(tmp_path, "acme", "second.xml", renumber(GOOD, "WATCH-2"))
        wait_for(lambda: _received(app) == ["first.xml", "second.xml"], timeout=30,
                 what="second.xml to be taken on its file-system event")
    finally:
        stop.set()
        watcher.wake()
        thread.join(30)
        app.engine.dispose()
    assert not thread.is_alive()
