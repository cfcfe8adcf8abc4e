"""Prometheus metrics: figures read from the database at each scrape, and counters kept by each process.

What the database holds (flows, invoices, deliveries and notifications, status changes, the queues) is read
when scraped, one GROUP BY per table: every process on every host sharing the database is in it. What only a
process sees (time spent validating, rejections by rule, SFTP connections and failed logins, failed API
authentications) is counted where it happens. `gateway run` keeps those counters in files under
<data_dir>/metrics/<host>/ (prometheus_client's multiprocess mode), where the web process of the same host
sums those of every process of that host, the dead included; elsewhere (the CLI, gateways run inside a test)
they stay in this process's memory. Hence they are made on first use, never at import.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from gateway.data.db import session_scope
from gateway.data.models import Delivery, Flow, FlowState, Invoice, InvoiceStatus
from gateway.engine import queue
from gateway.lifecycle.statuses import Status
from gateway.ops.log import log

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes for names in ASCII; every Prometheus reads it
MAX_RULES = 500  # rule labels one process reports; rule ids come from the rule packs, this is a safety net
OTHER_RULE = "other"  # the label of a rule past MAX_RULES, or of an id that does not look like one
_RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_VALIDATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

_registry = CollectorRegistry()  # this process's counters, outside multiprocess mode
_directory: Path | None = None  # multiprocess mode: where this host's processes keep their counters
_slot_file: list[IO] = []  # the open lock file of this process's slot, held until it exits
_made: list[_Counters] = []  # the counters, once made
_rules_seen: set[str] = set()
_lock = threading.Lock()


@dataclass(frozen=True)
class _Counters:
    validation: Histogram
    rejections: Counter
    sftp_connections: Counter
    sftp_login_failures: Counter
    api_auth_failures: Counter


def _counters() -> _Counters:
    with _lock:  # threads count at once: the first use makes them, once
        if not _made:
            _made.append(_make())
        return _made[0]


def _make() -> _Counters:
    return _Counters(
        Histogram("gateway_validation_seconds", "Time to check one document: admissibility, XSD and business "
                  "rules", buckets=_VALIDATION_BUCKETS, registry=_registry),
        Counter("gateway_rejections", "Rejected invoices and flows refused whole, by each fatal rule they broke "
                f"(at most {MAX_RULES} rules per process, then '{OTHER_RULE}')", ["rule"], registry=_registry),
        Counter("gateway_sftp_connections", "SFTP connections: accepted, or refused (banned, "
                "too_many_connections)", ["outcome"], registry=_registry),
        Counter("gateway_sftp_login_failures", "Failed SFTP password logins", registry=_registry),
        Counter("gateway_api_auth_failures", "API requests refused for an unknown or revoked token",
                registry=_registry),
    )


def multiprocess(data_dir: Path) -> None:
    """Keep this process's counters in files that the web process of this host sums (prometheus_client's
    multiprocess mode), in data_dir/metrics/<host>/; to be called before any counter is used.

    The files are named after a slot, the lowest one no live process of this host holds (a lock held until
    this process exits, even killed), not after the pid: a process started again takes up the files and the
    counts of one that ended, so that the sums never go back and the files do not pile up."""
    global _directory
    directory = data_dir / "metrics" / re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())
    if _directory == directory:
        return
    if _directory is not None or _made:
        raise RuntimeError("metrics already counted in this process: multiprocess mode comes first")
    directory.mkdir(parents=True, exist_ok=True)
    slot = _claim_slot(directory)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # where prometheus_client's values write
    values.ValueClass = values.MultiProcessValue(lambda: slot)
    _directory = directory


def _claim_slot(directory: Path) -> int:
    slot = 0
    while True:
        handle = open(directory / f"slot-{slot}.lock", "w")  # noqa: SIM115 (kept open: closing drops the lock)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            slot += 1
            continue
        _slot_file.append(handle)
        return slot


def validating() -> AbstractContextManager:
    """Times the block as the validation of one document."""
    return _counters().validation.time()


def rejected(rules: Iterable[str]) -> None:
    """Count one rejection for each distinct rule of rules."""
    counter = _counters().rejections
    for rule in set(rules):
        counter.labels(_rule_label(rule)).inc()


def _rule_label(rule: str) -> str:
    if not _RULE_ID.fullmatch(rule):
        return OTHER_RULE
    with _lock:
        if rule not in _rules_seen and len(_rules_seen) >= MAX_RULES:
            return OTHER_RULE
        _rules_seen.add(rule)
    return rule


def sftp_connection(outcome: str) -> None:
    _counters().sftp_connections.labels(outcome).inc()


def sftp_login_failed() -> None:
    _counters().sftp_login_failures.inc()


def api_auth_failed() -> None:
    _counters().api_auth_failures.inc()


def exposition(engine: Engine) -> bytes:
    """Every metric in Prometheus's text format: the database's figures, then the counters of this process, or
    of every process of this host in multiprocess mode."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(engine))
    if _directory is not None:
        MultiProcessCollector(registry, str(_directory))
    else:
        registry.register(_registry)
    return generate_latest(registry)


class DatabaseCollector:
    """The figures the database holds, read at each scrape; gateway_database_up says whether it answered."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("gateway_database_up", "Whether the database answered this scrape (1) or not (0)")
        try:
            families = self._read()
        except SQLAlchemyError as exc:
            log.warning("metrics_database_failed", error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[Metric]:
        received = CounterMetricFamily("gateway_flows_received", "Flows received, by channel", labels=["channel"])
        finished = CounterMetricFamily("gateway_flows_finished", "Flows brought to their final state, by channel "
                                       "and state", labels=["channel", "state"])
        invoices = CounterMetricFamily("gateway_invoices", "Invoices judged, by verdict", labels=["verdict"])
        deliveries = GaugeMetricFamily("gateway_deliveries", "Deliveries by kind (invoice, status, webhook, "
                                       "email) and state (pending, delivered, dead)", labels=["kind", "state"])
        statuses = CounterMetricFamily("gateway_status_changes", "Invoice status changes recorded, by status name",
                                       labels=["status"])
        depth = GaugeMetricFamily("gateway_queue_depth", "Rows still to do: ready (claimable now), leased (being "
                                  "worked on), later (due later), dead (deliveries given up)",
                                  labels=["queue", "state"])
        oldest = GaugeMetricFamily("gateway_queue_oldest_ready_seconds", "Seconds the oldest ready row has been "
                                   "due (0 when none is ready)", labels=["queue"])
        with session_scope(self.engine, write=False) as session:
            by_channel: dict[str, int] = {}
            for channel, state, count in session.execute(
                    select(Flow.channel, Flow.state, func.count()).group_by(Flow.channel, Flow.state)):
                by_channel[channel] = by_channel.get(channel, 0) + count
                if state is not FlowState.RECU:
                    finished.add_metric([channel, str(state)], count)
            for channel, count in by_channel.items():
                received.add_metric([channel], count)
            for verdict, count in session.execute(select(Invoice.verdict, func.count()).group_by(Invoice.verdict)):
                invoices.add_metric([str(verdict)], count)
            for kind, state, count in session.execute(
                    select(Delivery.kind, Delivery.state, func.count()).group_by(Delivery.kind, Delivery.state)):
                deliveries.add_metric([kind, str(state)], count)
            for code, count in session.execute(
                    select(InvoiceStatus.status, func.count()).group_by(InvoiceStatus.status)):
                statuses.add_metric([Status(code).name], count)
        for name, model in (("flows", Flow), ("deliveries", Delivery)):
            backlog = queue.backlog(self.engine, model)
            for state in ("ready", "leased", "later", "dead"):
                depth.add_metric([name, state], getattr(backlog, state))
            oldest.add_metric([name], backlog.waited or 0.0)
        return [received, finished, invoices, deliveries, statuses, depth, oldest]
