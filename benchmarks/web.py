"""Console benchmark: the dashboard and the invoice search with 100,000 invoices in the database, on SQLite and
PostgreSQL, against the target of 200 ms at the 95th percentile.

The invoices are written straight into the database (SQLAlchemy Core, as the pipeline would have left them: a
flow each, its invoice, two statuses), 60 % sent by the sample supplier acme to mairie-exemple and the rest
by four other suppliers; 5 % rejected at integration, the others spread over the lifecycle's statuses, issued
over two years, of amounts from 10 to 100,000. Then `gateway run --role web` serves them, and one client logged
in as acme (the dashboard of a supplier with 60,000 invoices), then as an operator (all 100,000), asks each
page `--requests` times in turn, after one warm-up each. Printed per page: p50 and p95 of the time to the
whole answer, as the client saw it; then whether every p95 is under the target. The last line is the whole
result as JSON; the exit status is 1 if a target is missed.

    python benchmarks/web.py [--invoices 100000] [--requests 30] [--db sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402

from benchmarks.common import percentile  # noqa: E402
from benchmarks.e2e import Postgres  # noqa: E402
from gateway import config as config_module  # noqa: E402
from gateway.data.models import Flow, FlowState, Invoice, InvoiceStatus, Verdict  # noqa: E402
from tests.harness import cli  # noqa: E402
from tests.web_harness import web_config, web_gateway  # noqa: E402

TARGET_MS = 200.0
SUPPLIER, RECIPIENT, OPERATOR = "acme", "mairie-exemple", "ops"
SELLER, BUYER = "81234567600017", "21370999100011"
PASSWORD = "bench-web-1"
OTHERS = [f"bench-supplier-{n}" for n in range(1, 5)]
# The statuses invoices are left in, and how often (the rest of the path is taken by few).
STATUSES = [("03", 40), ("07", 15), ("08", 8), ("10", 7), ("11", 15), ("05", 5), ("06", 5), ("04", 1), ("09", 4)]
CHUNK = 5000


def fill(database_url: str, count: int, seed: int = 1) -> None:
    """count invoices, their flows and statuses, in chunks of Core inserts."""
    rng = random.Random(seed)
    codes, weights = zip(*STATUSES, strict=True)
    start = datetime(2025, 1, 2, tzinfo=UTC)
    step = (datetime(2026, 11, 30, tzinfo=UTC) - start) / count
    engine = create_engine(database_url)
    try:
        for first in range(0, count, CHUNK):
            flows, invoices, statuses = [], [], []
            for n in range(first, min(first + CHUNK, count)):
                received = start + step * n
                flow_id = f"{received:%Y%m%d%H%M%S%f}-{n:06x}"
                account = SUPPLIER if rng.random() < 0.6 else rng.choice(OTHERS)
                rejected = rng.random() < 0.05
                status = None if rejected else rng.choices(codes, weights)[0]
                flows.append({"id": flow_id, "account": account, "original_name": f"bench-{n}.xml", "size": 4000,
                              "sha256": f"{n:064x}", "channel": "api", "received_at": received,
                              "state": FlowState.REJETE if rejected else FlowState.INTEGRE, "syntax": "ubl-invoice",
                              "acknowledged": True, "reported": True, "finished_at": received})
                issued = (received - timedelta(days=rng.randint(0, 20))).date()
                total = f"{rng.uniform(10, 100_000):.2f}"
                invoices.append({"id": f"{flow_id}-001", "flow_id": flow_id, "account": account,
                                 "name": f"bench-{n}.xml", "sha256": f"{n:064x}", "syntax": "ubl-invoice",
                                 "number": f"BENCH-{n:08d}", "issue_date": issued.isoformat(), "type_code": "380",
                                 "seller_siret": SELLER, "buyer_siret": BUYER, "total": total, "amount": float(total),
                                 "currency": "EUR",
                                 "verdict": Verdict.REJECTED if rejected else Verdict.ACCEPTED,
                                 "recipient": None if rejected else RECIPIENT, "status": status})
                if status:
                    statuses += [{"invoice_id": f"{flow_id}-001", "status": "01", "at": received, "actor": account},
                                 {"invoice_id": f"{flow_id}-001", "status": status, "at": received + timedelta(days=3),
                                  "actor": RECIPIENT, "reason_code": "JUSTIF_ABS" if status in ("04", "05", "06")
                                  else None}]
            with engine.begin() as connection:
                connection.execute(insert(Flow), flows)
                connection.execute(insert(Invoice), invoices)
                connection.execute(insert(InvoiceStatus), statuses)
    finally:
        engine.dispose()


def log_in(client: httpx.Client, name: str) -> None:
    """The client gets a console session of name."""
    form = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    answer = client.post("/console/login", data={"name": name, "password": PASSWORD, "csrf": csrf, "next": "/console/"})
    if answer.status_code != 303:
        raise RuntimeError(f"login of {name} refused: {answer.status_code}")


def pages(count: int) -> list[tuple[str, str]]:
    """(label, path) of each page asked: the dashboard (whole, and for a period) and searches of each kind."""
    middle = f"BENCH-{count // 2:08d}"
    return [
        ("dashboard", "/console/"),
        ("dashboard, one quarter", "/console/?issued_from=2026-04-01&issued_to=2026-06-30"),
        ("search, newest first", "/console/invoices"),
        ("search by number", f"/console/invoices?number={middle}"),
        ("search by status", "/console/invoices?status=06"),
        ("search by counterparty", "/console/invoices?counterparty=exemple"),
        ("search by issue dates", "/console/invoices?issued_from=2025-06-01&issued_to=2025-06-30"),
        ("search by amount range", "/console/invoices?amount_min=5000&amount_max=5100"),
        ("search sorted by amount", "/console/invoices?sort=amount&order=desc"),
        ("search sorted by number", "/console/invoices?sort=number&order=asc"),
        ("search, page 20", "/console/invoices?page=20"),
    ]


def timed(client: httpx.Client, path: str, requests: int) -> list[float]:
    """Milliseconds of each of requests answers to path, after one warm-up."""
    client.get(path).raise_for_status()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


def run(db: str, count: int, requests: int, stack: ExitStack, postgres: Postgres) -> list[dict]:
    root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-web-{db}-")))
    database_url = postgres.database(stack) if db == "postgresql" else None
    config = web_config(root, database_url, overrides={"sftp": {"enabled": False}, "web": {"auth_delay": 0}})
    for name, role in ((SUPPLIER, "supplier"), (RECIPIENT, "recipient")):
        cli(config, "accounts", "add", name, "--update", "--role", role, "--password", PASSWORD)
    cli(config, "operators", "add", OPERATOR, "--password", PASSWORD)
    started = time.perf_counter()
    fill(config_module.load(config).gateway.database_url, count)
    if db == "postgresql":  # what autovacuum does after such a load: statistics, and the visibility map that
        # lets counts read the indexes alone (SQLite's planner has no statistics, and needs none here)
        engine = create_engine(config_module.load(config).gateway.database_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("VACUUM ANALYZE"))
        engine.dispose()
    print(f"{db}: {count:,} invoices written in {time.perf_counter() - started:.0f} s", flush=True)
    results = []
    with web_gateway(config, "--role", "web") as (_process, url):
        for viewer in (SUPPLIER, OPERATOR):
            with httpx.Client(base_url=url, timeout=60) as client:
                log_in(client, viewer)
                for label, path in pages(count):
                    times = timed(client, path, requests)
                    result = {"db": db, "viewer": viewer, "page": label, "path": path,
                              "p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1)}
                    print(f"{db:10} {viewer:5} {label:26} p50 {result['p50_ms']:7.1f} ms  "
                          f"p95 {result['p95_ms']:7.1f} ms", flush=True)
                    results.append(result)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()
    results = []
    with ExitStack() as stack:
        postgres = Postgres(stack)
        for db in args.db.split(","):
            with ExitStack() as per_db:
                results += run(db, args.invoices, args.requests, per_db, postgres)
    missed = [r for r in results if r["p95_ms"] >= TARGET_MS]
    for r in missed:
        print(f"target missed: {r['db']} {r['viewer']} {r['page']} p95 {r['p95_ms']} ms >= {TARGET_MS:.0f} ms")
    print(f"target p95 < {TARGET_MS:.0f} ms on every page: {'met' if not missed else 'NOT met'}")
    print(json.dumps({"invoices": args.invoices, "requests": args.requests, "results": results}))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
