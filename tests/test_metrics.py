"""/metrics, /healthz and /readyz of a real `gateway run`: the counts a run produced, in one process and with the
roles split across two, and readiness when the database or the disk fails."""

from __future__ import annotations

import os
from collections.abc import Callable

import httpx
import paramiko
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.data.db import make_engine
from gateway.ops import metrics
from tests.harness import SAMPLES, GatewayProcess, drop, renumber, wait_for
from tests.postgres import PostgresServer, binaries
from tests.web_harness import SUPPLIER, client, log_lines, start, token, web_config, web_gateway

GOOD = (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes()
REJECT = (SAMPLES / "flows" / "reject-structure-unknown.xml").read_bytes()
REJECT_RULE = "DIR-STRUCTURE-UNKNOWN"

Samples = dict[tuple[str, tuple], float]


def scrape(url: str) -> Samples:
    """Every sample of url's /metrics, asked without a token as Prometheus does: (name, labels) -> value."""
    answer = httpx.get(f"{url}/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == metrics.CONTENT_TYPE
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def series(samples: Samples, name: str) -> dict[tuple, float]:
    """The samples called name, by their labels' values (in the labels' names order)."""
    return {tuple(v for _k, v in labels): value for (n, labels), value in samples.items() if n == name}


def total(samples: Samples, name: str) -> float:
    return sum(series(samples, name).values())


def scrape_until(url: str, ready: Callable[[Samples], bool], what: str, timeout: float = 60) -> Samples:
    def attempt() -> Samples | None:
        samples = scrape(url)
        return samples if ready(samples) else None
    return wait_for(attempt, timeout, what, 0.1)


def finished(url: str, count: int) -> Samples:
    """The samples once count flows are finished and nothing is left in the queues."""
    return scrape_until(url, lambda s: total(s, "gateway_flows_finished_total") == count and
                        total(s, "gateway_queue_depth") == 0, f"{count} flows finished and the queues empty")


def sftp_login(port: int, password: str, name: str = SUPPLIER) -> None:
    with paramiko.SSHClient() as ssh:
        ssh.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # a fresh test server: nothing to pin yet
        ssh.connect("127.0.0.1", port, username=name, password=password, look_for_keys=False,
                    allow_agent=False, timeout=10, banner_timeout=10)


def test_metrics_show_what_the_run_did(tmp_path):
    """3 invoices deposited over the API and integrated, 1 dropped in the zone and rejected for one rule, 2 failed
    SFTP logins under two names, 1 unknown API token (three names failing from one address: the last failure bans
    it, and its next SFTP connection is refused): /metrics
    shows exactly these, from the database and from the process's own counters."""
    config = web_config(tmp_path, overrides={"sftp": {"enabled": True, "port": 0, "auth_delay": 0, "ban_accounts": 3},
                                             "web": {"auth_delay": 0}})
    bearer = token(config, SUPPLIER)
    with web_gateway(config) as (process, url):
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
        with client(url, bearer) as api:
            for n in range(3):
                answer = api.post("/api/v1/flows", params={"name": f"ok-{n}.xml"},
                                  content=renumber(GOOD, f"METRICS-{n}"))
                assert answer.status_code == 202, answer.text
        drop(tmp_path, SUPPLIER, "reject.xml", REJECT)
        with client(url, "not-a-token") as stranger:
            assert stranger.get("/api/v1/flows").status_code == 401
        port = next(line["port"] for line in log_lines(process.log) if line["event"] == "sftp_started")
        for name in (SUPPLIER, "nobody"):
            with pytest.raises(paramiko.AuthenticationException):
                sftp_login(port, "wrong", name)
        with pytest.raises((paramiko.SSHException, EOFError, OSError)):  # banned: closed at once
            sftp_login(port, "wrong")

        samples = finished(url, 4)
        # the refused connection is counted just after its socket is closed, which the client may see first
        samples = scrape_until(url, lambda s: total(s, "gateway_sftp_connections_total") == 3,
                               "the refused SFTP connection counted")

    assert series(samples, "gateway_database_up") == {(): 1}
    assert series(samples, "gateway_flows_received_total") == {("api",): 3, ("zone",): 1}
    assert series(samples, "gateway_flows_finished_total") == {("api", "INTEGRE"): 3, ("zone", "REJETE"): 1}
    assert series(samples, "gateway_invoices_total") == {("accepted",): 3, ("rejected",): 1}
    assert series(samples, "gateway_rejections_total") == {(REJECT_RULE,): 1}
    assert series(samples, "gateway_validation_seconds_count") == {(): 4}
    assert series(samples, "gateway_validation_seconds_bucket")[("+Inf",)] == 4
    assert 0 < total(samples, "gateway_validation_seconds_sum") < 60
    deliveries = series(samples, "gateway_deliveries")
    assert deliveries[("invoice", "delivered")] == 3
    assert {state for _kind, state in deliveries} == {"delivered"}
    statuses = series(samples, "gateway_status_changes_total")
    assert statuses[("DEPOSEE",)] == 3 and statuses[("MISE_A_DISPOSITION",)] == 3
    assert series(samples, "gateway_queue_oldest_ready_seconds") == {("flows",): 0, ("deliveries",): 0}
    assert series(samples, "gateway_sftp_connections_total") == {("accepted",): 2, ("banned",): 1}
    assert series(samples, "gateway_sftp_login_failures_total") == {(): 2}
    assert series(samples, "gateway_api_auth_failures_total") == {(): 1}


def test_a_split_web_process_shows_the_counters_of_the_other_processes_of_its_host(tmp_path):
    """`--role web` in one process, the other roles in another: the validation times and rejections counted by the
    worker process are on the web process's /metrics, still after that process stopped, and go on from there
    once another takes its place (in the same files: they do not pile up)."""
    config = web_config(tmp_path)
    web = GatewayProcess(config, "--role", "web", log=tmp_path / "web.log")
    others = ("--role", "sftp,ingest,worker,deliver")
    worker = GatewayProcess(config, *others, log=tmp_path / "worker.log")
    try:
        url = start(web)
        worker.start()
        drop(tmp_path, SUPPLIER, "ok.xml", renumber(GOOD, "SPLIT-1"))
        drop(tmp_path, SUPPLIER, "reject.xml", REJECT)
        samples = finished(url, 2)
        assert series(samples, "gateway_validation_seconds_count") == {(): 2}
        assert series(samples, "gateway_rejections_total") == {(REJECT_RULE,): 1}
        assert worker.stop() == 0
        assert series(scrape(url), "gateway_validation_seconds_count") == {(): 2}

        files = {p.name for p in (tmp_path / "var" / "metrics").glob("*/*.db")}
        assert files
        worker = GatewayProcess(config, *others, log=tmp_path / "worker.log")
        worker.start()
        drop(tmp_path, SUPPLIER, "reject-again.xml", renumber(REJECT, "SPLIT-3"))
        samples = finished(url, 3)
        assert series(samples, "gateway_validation_seconds_count") == {(): 3}
        assert series(samples, "gateway_rejections_total") == {(REJECT_RULE,): 2}
        assert {p.name for p in (tmp_path / "var" / "metrics").glob("*/*.db")} == files
    finally:
        codes = [p.stop() for p in (worker, web) if p.proc is not None and p.proc.poll() is None]
    assert codes == [0, 0]


def test_readyz_says_not_ready_when_the_database_stops(tmp_path):
    """Ready with every role running on a PostgreSQL server of the test's own; once that server stops, /readyz
    answers 503 with the reason, /healthz still answers, and /metrics still answers, saying the database is down."""
    bindir = binaries()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries not found: CI must run the PostgreSQL tests")
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: the database cannot be stopped")
    server = PostgresServer(bindir).start()
    running = True
    try:
        config = web_config(tmp_path, server.url(server.create_database()))
        with web_gateway(config) as (_process, url):
            answer = httpx.get(f"{url}/readyz")
            assert (answer.status_code, answer.json()) == (200, {"status": "ready"})
            assert series(scrape(url), "gateway_database_up") == {(): 1}

            running = False
            server.stop()
            answer = wait_for(lambda: (r := httpx.get(f"{url}/readyz", timeout=30)).status_code != 200 and r,
                              30, "/readyz to say not ready")
            assert answer.status_code == 503
            body = answer.json()
            assert body["status"] == "not ready"
            assert [r for r in body["reasons"] if r.startswith("database unreachable: OperationalError")], body
            assert httpx.get(f"{url}/healthz").status_code == 200
            samples = scrape(url)
            assert series(samples, "gateway_database_up") == {(): 0}
            assert "gateway_flows_received_total" not in {name for name, _labels in samples}
    finally:
        if running:
            server.stop()


def test_readyz_says_not_ready_when_the_disk_is_short_of_room(tmp_path):
    config = web_config(tmp_path, overrides={"web": {"min_free_bytes": 1 << 62}})
    with web_gateway(config, "--role", "web") as (_process, url):
        answer = httpx.get(f"{url}/readyz")
        assert answer.status_code == 503
        assert answer.json()["status"] == "not ready"
        assert [r for r in answer.json()["reasons"] if r.startswith("disk space low: ")], answer.json()
        assert httpx.get(f"{url}/healthz").status_code == 200


def test_rule_labels_are_capped(tmp_path):
    """Past MAX_RULES distinct rules in a process, or for an id that does not look like one, the label is 'other':
    nothing is lost from the counts, and the series stay bounded."""
    engine = make_engine(f"sqlite:///{tmp_path / 'gateway.db'}")

    def rejections() -> dict[tuple, float]:
        families = text_string_to_metric_families(metrics.exposition(engine).decode())
        return {tuple(s.labels.values()): s.value for f in families for s in f.samples
                if s.name == "gateway_rejections_total"}
    try:
        before = rejections()
        rules = [f"CAP-TEST-{n}" for n in range(metrics.MAX_RULES + 10)]
        metrics.rejected([*rules, *rules, "no spaces\nor newlines"])  # each distinct rule counted once
        after = rejections()
    finally:
        engine.dispose()
    assert len(after) <= metrics.MAX_RULES + 1
    own = sum(after.get((rule,), 0) for rule in rules)
    other = after[(metrics.OTHER_RULE,)] - before.get((metrics.OTHER_RULE,), 0)
    assert own + other == len(rules) + 1
    assert other >= 11
