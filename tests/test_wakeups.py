"""Wake-ups across processes: on PostgreSQL, work queued by one process starts at once in another, whose
workers would otherwise find it only at their next poll (a minute, here)."""

from __future__ import annotations

import psycopg
import pytest

from gateway import config as config_module
from gateway.app import App
from gateway.engine.runner import Gateway
from gateway.engine.wakeups import CHANNEL
from gateway.ingest.intake import Arrival, intake
from tests.harness import (
    SAMPLES,
    cli,
    drop,
    files,
    load_samples,
    outbox,
    renumber,
    wait_finished,
    wait_for,
    write_config,
)

INVOICE = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
SUPPLIER = "acme"


@pytest.fixture
def database(postgres):
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


def _listeners(url: str) -> list[int]:
    """The backends of the database that last ran LISTEN gateway_work: the wake-up listeners."""
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as connection:
        return [pid for (pid,) in connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = %s",
            (f"LISTEN {CHANNEL}",))]


def test_work_queued_by_another_process_starts_at_once(tmp_path, database, rules_stage):
    """A flow taken in by another process's intake is worked on within seconds although the workers poll once
    a minute, and so is the status-return of a status set with the CLI; so they are again after the listener's
    connection was cut, once it has listened again."""
    config = write_config(tmp_path, {"worker": {"poll_interval": 60.0}}, database_url=database)
    load_samples(config)
    settings = config_module.load(config)
    workers, front = App.from_settings(settings), App.from_settings(settings)
    workers.rules = rules_stage
    gateway = Gateway(workers, roles=("worker", "deliver"))
    gateway.start()
    try:
        for n in (1, 2):
            [listener] = wait_for(lambda: _listeners(database) or None, what="a listener")
            number = f"WAKE-{n}"
            flow = intake(front, drop(tmp_path, SUPPLIER, f"{number}.xml", renumber(INVOICE, number)),
                          Arrival(SUPPLIER, f"{number}.xml", "zone"))
            wait_for((outbox(tmp_path, SUPPLIER) / f"{flow.id}.report.xml").exists, 20, f"the report of {number}")
            wait_finished(config, flow.id)
            cli(config, "status", "set", number, "SERVICE_FAIT")
            # each flow: 200, 203 and 204 for its invoice, 500 for the flow itself
            wait_for(lambda: len(files(outbox(tmp_path, SUPPLIER), ".cdar.xml")) == 4 * n, 20,
                     f"the status-return of SERVICE_FAIT for {number}")
            with psycopg.connect(database.replace("postgresql+psycopg", "postgresql"), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (listener,))
            wait_for(lambda: listener not in _listeners(database), what="the listener's connection cut")
    finally:
        gateway.stop()
        workers.engine.dispose()
        front.engine.dispose()
