"""End-to-end benchmark: N invoice flows uploaded over SFTP through the whole pipeline.

Each configuration (database x worker processes) gets a fresh gateway of `gateway run` processes on one
database, and N flows put by several concurrent OpenSSH `sftp` sessions (key login) to its embedded SFTP
server. Every flow goes through acknowledgement, XSD + EN 16931 rules, platform controls and directory,
delivery to a sample recipient and the integration report; a configuration whose flows do not all end
INTEGRE is reported as failed. Printed per configuration, as a table and as one JSON line:
flows/s and invoices/s (first put to last report), the upload rate, drop-to-acknowledgement and
drop-to-report p50/p99 (drop: the client saw its put complete; acknowledgement and report: their events in
the database), the peak RSS summed over the gateway processes and their children (validators), sampled
from /proc, and the ratio to the raw rate, measured in the same run before any gateway starts: the same
invoices through check_document and the rules engine in a tight loop, in one process and in one per core.

Invoices: the valid ones of ../shared/corpus/manifest.csv (samples/flows/*-ok.xml without the corpus),
re-addressed from the sample supplier acme to mairie-exemple and renumbered per flow; those the gateway
would still reject (a credit note without the reference of its invoice, the French rules of an
EXTENDED-CTC-FR invoice) are left out before the run.

    python benchmarks/e2e.py [--flows 300] [--db sqlite,postgresql] [--workers 1,2] [--batch 1,16] [--sessions 4]
                             [--rate R|half]
                             [--front embedded|sshd]
    python benchmarks/e2e.py --rss-flows 20000 [--rss-every 1000] --db sqlite --workers 2

Targets: the pipeline reaches 0.70 of the raw rate with as many worker processes as cores; p99
drop-to-acknowledgement under 1 s at half load (--rate half runs each configuration again at half the
rate it reached); RSS flat over a 20,000-flow run (--rss-flows).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import paramiko  # noqa: E402
from sqlalchemy import create_engine, func  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from benchmarks.common import SftpUploads, percentile, tree_cpu_s, tree_rss_mb  # noqa: E402
from benchmarks.invoices import SUPPLIER, admissible, candidates, stage_flows  # noqa: E402
from benchmarks.raw import raw_rate  # noqa: E402
from gateway import config as config_module  # noqa: E402
from gateway.data.models import Delivery, DeliveryState, Event, Flow, Invoice, Verdict  # noqa: E402
from tests.harness import CORPUS, GatewayProcess, cli, inbox, load_samples, wait_for, write_config  # noqa: E402
from tests.postgres import PostgresServer, binaries  # noqa: E402
from tests.sftp_harness import SSHD, OpenSSH, Sshd, current_user, free_port, known_hosts, listening, make_key, public  # noqa: E402

CORES = os.cpu_count() or 1
FRONT_ROLES = "sftp,ingest,deliver"
TIMED = ("acknowledged", "report_written")


# --- the gateway --------------------------------------------------------------------------------------

def has_roles() -> bool:
    """Whether `gateway run` takes --role (one process for SFTP and intake, others for the workers)."""
    from gateway.cli import run

    return any("--role" in option.opts for option in run.params)


def _epoch(moment: datetime) -> float:
    """A database time as epoch seconds; naive ones are UTC, as the gateway writes them."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Cluster:
    """The gateway as `gateway run` processes sharing one root and one database.

    With `--role`: one process for sftp, ingest and deliver, and `workers` processes for the worker role.
    Without it: `workers` processes running everything, only the first with the SFTP server.
    """

    def __init__(self, root: Path, database_url: str | None, workers: int, settings: dict,
                 database_pid: int | None = None, sshd: bool = False, front_roles: str = FRONT_ROLES) -> None:
        self.root, self.port, roles = root, free_port(), has_roles()
        self.database_pid = database_pid
        sftp = {"enabled": not sshd, "port": self.port, **settings.get("sftp", {})}
        if not roles:  # the other processes' configuration: the same without the SFTP server
            quiet = write_config(root, {**settings, "sftp": {"enabled": False}}, database_url)
            quiet = quiet.rename(root / "quiet.toml")
        config = write_config(root, {**settings, "sftp": sftp}, database_url)
        load_samples(config)
        self.key = make_key(root / "client_key")
        cli(config, "accounts", "add", SUPPLIER, "--update", "--role", "supplier", "--key", str(public(self.key)))
        self.sshd = Sshd(root, inbox(root, SUPPLIER), self.key) if sshd else None
        if roles:
            front = front_roles.replace("sftp,", "") if sshd else front_roles
            self.processes = [GatewayProcess(config, "--role", front, log=root / "front.log")]
            self.processes += [GatewayProcess(config, "--role", "worker", log=root / f"worker-{k}.log")
                               for k in range(workers)]
        else:
            self.processes = [GatewayProcess(config if k == 0 else quiet, log=root / f"worker-{k}.log")
                              for k in range(workers)]
        self.db = create_engine(config_module.load(config).gateway.database_url)  # a plain reader

    def __enter__(self) -> Cluster:
        try:
            if self.sshd:
                self.sshd.start()
            for process in self.processes:
                process.start()
            wait_for(self._ready, timeout=300, what="the gateway processes to start")
        except BaseException:
            self.stop()
            raise
        if self.sshd:
            self.known_hosts = known_hosts(self.root / "known_hosts", self.sshd.port, self.sshd.host_public_key())
        else:
            host_key = paramiko.Ed25519Key(filename=str(self.root / "var" / "sftp_host_ed25519_key"))
            self.known_hosts = known_hosts(self.root / "known_hosts", self.port, host_key)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _ready(self) -> bool:
        """Every process started, the first with its SFTP server listening (told by the log, since a probe
        connection would make the server log a failed handshake)."""
        self.check_alive()
        logs = [p.log.read_bytes() for p in self.processes]
        front = listening(self.sshd.port) if self.sshd else b'"sftp_started"' in logs[0]
        return front and all(b'"gateway_started"' in log for log in logs)

    def check_alive(self) -> None:
        for process in self.processes:
            if process.proc.poll() is not None:
                tail = process.log.read_text(errors="replace").strip().splitlines()[-5:]
                raise RuntimeError(f"{process.log.name}: gateway exited with {process.proc.returncode}: "
                                   + "\n".join(tail))

    def stop(self) -> None:
        for process in self.processes:  # all asked at once, then each waited for
            if process.proc is not None and process.proc.poll() is None:
                process.proc.send_signal(signal.SIGTERM)
        for process in self.processes:
            if process.proc is not None:
                try:
                    process.stop()
                except subprocess.TimeoutExpired:
                    print(f"warning: {process.log.name} ignored SIGTERM for 30 s and was killed", file=sys.stderr)
        if self.sshd:
            self.sshd.stop()
        self.db.dispose()

    def client(self) -> OpenSSH:
        if self.sshd:
            return OpenSSH(self.sshd.port, current_user(), self.known_hosts, key=self.key)
        return OpenSSH(self.port, SUPPLIER, self.known_hosts, key=self.key)

    @property
    def remote(self) -> str:
        """Where a put goes: sshd starts each session in the supplier's in/ folder."""
        return "." if self.sshd else "/in/"

    def rss_mb(self) -> float:
        return tree_rss_mb(p.proc.pid for p in self.processes)

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds so far: the first process (intake, deliveries) with its SFTP server's process, the others
        (the workers), their validator processes, and the database server's processes."""
        workers, validators = tree_cpu_s(p.proc.pid for p in self.processes[1:])
        found = {"front": sum(tree_cpu_s([self.processes[0].proc.pid])), "workers": workers, "validators": validators}
        if self.sshd:
            found["sshd"] = sum(tree_cpu_s([self.sshd.proc.pid]))
        if self.database_pid:
            found["database"] = sum(tree_cpu_s([self.database_pid]))
        return found

    def reported(self) -> int:
        with Session(self.db) as session:
            return session.exec(select(func.count()).select_from(Flow).where(Flow.reported)).one()

    def times(self) -> dict[str, dict[str, float]]:
        """Original name -> event kind -> epoch seconds, for the acknowledgement and the report."""
        found: dict[str, dict[str, float]] = {}
        query = select(Flow.original_name, Event.kind, Event.at).join(Event, Event.flow_id == Flow.id) \
            .where(Event.kind.in_(TIMED))
        with Session(self.db) as session:
            for name, kind, at in session.exec(query):
                found.setdefault(name, {})[kind] = _epoch(at)
        return found

    def outcome(self) -> dict:
        """Flows by state, invoices by verdict, invoices delivered, and the rules that rejected invoices."""
        with Session(self.db) as session:
            states = dict(session.exec(select(Flow.state, func.count()).group_by(Flow.state)).all())
            verdicts = dict(session.exec(select(Invoice.verdict, func.count()).group_by(Invoice.verdict)).all())
            delivered = session.exec(select(func.count()).select_from(Delivery).where(
                Delivery.kind == "invoice", Delivery.state == DeliveryState.DELIVERED)).one()
            rejected = session.exec(select(Invoice.findings).where(Invoice.verdict == Verdict.REJECTED)).all()
        rules = Counter(f["rule"] for found in rejected for f in json.loads(found) if f["severity"] == "fatal")
        return {"states": {str(getattr(k, "value", k)): v for k, v in states.items()},
                "accepted": verdicts.get(Verdict.ACCEPTED, 0), "rejected": verdicts.get(Verdict.REJECTED, 0),
                "delivered": delivered, "rejected_by": dict(rules.most_common(5))}


# --- one configuration --------------------------------------------------------------------------------

@dataclass
class Spec:
    db: str
    workers: int
    rate: float = 0.0  # flows/s; 0: as fast as the clients go
    half_load: bool = False
    sshd: bool = False  # OpenSSH's sshd serves the zone instead of the embedded SFTP server
    batch: int = 0  # [worker] batch; 0: the config's

    @property
    def label(self) -> str:
        return (f"{self.db}-{self.workers}w" + (f"-batch{self.batch}" if self.batch else "")
                + ("-sshd" if self.sshd else "") + (f"-{self.rate:.1f}per-s" if self.rate else ""))


@dataclass
class Result:
    spec: Spec
    flows: int
    outcome: dict
    seconds: float  # first put to last report
    upload_seconds: float  # first put to last put completed
    ack: list[float]
    report: list[float]
    peak_rss_mb: float
    cpu_ms: dict[str, float]  # CPU per flow, by kind of process
    rss_trace: list[tuple[int, float]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.outcome["states"].get("INTEGRE", 0) == self.flows == self.outcome["delivered"]

    def summary(self, raw: dict[int, float], settings: dict) -> dict:
        invoices_per_s = self.outcome["accepted"] / self.seconds
        ms = {f"{name}_p{q}_ms": round(percentile(values, q) * 1000, 1)
              for name, values in (("ack", self.ack), ("report", self.report)) for q in (50, 99)}
        return {"db": self.spec.db, "worker_processes": self.spec.workers, "batch": self.spec.batch or None,
                "roles": has_roles(),
                "front": "sshd" if self.spec.sshd else "embedded",
                "rate": self.spec.rate or None, "half_load": self.spec.half_load, "flows": self.flows,
                "complete": self.complete, **self.outcome, "flows_per_s": round(self.flows / self.seconds, 2),
                "invoices_per_s": round(invoices_per_s, 2),
                "upload_per_s": round(self.flows / self.upload_seconds, 2), **ms,
                "peak_rss_mb": round(self.peak_rss_mb), "cpu_ms_per_flow": self.cpu_ms, "rss_trace": self.rss_trace,
                "raw_per_s": {str(k): round(v, 2) for k, v in raw.items()},
                "ratio_to_raw": {str(k): round(invoices_per_s / v, 3) for k, v in raw.items()},
                "settings": settings}


def follow(cluster: Cluster, uploads: SftpUploads, n: int, rss_every: int, stall: float) -> tuple[float, list]:
    """Poll until n flows are reported: the RSS peak and, every rss_every flows, the RSS then. Fails when a
    process or an upload session dies, or when no flow is reported for `stall` seconds."""
    peak, trace, reported, moved = 0.0, [], 0, time.monotonic()
    while reported < n:
        cluster.check_alive()
        problem = uploads.failed()
        if problem:
            raise RuntimeError(problem)
        count, rss = cluster.reported(), cluster.rss_mb()
        peak = max(peak, rss)
        if count != reported:
            reported, moved = count, time.monotonic()
        elif time.monotonic() - moved > stall:
            raise RuntimeError(f"no flow reported for {stall:.0f} s ({reported} of {n} reported)")
        while rss_every and len(trace) < reported // rss_every:
            trace.append(((len(trace) + 1) * rss_every, round(rss)))
            print(f"  {trace[-1][0]:>7} flows reported   RSS {rss:7.0f} MB", file=sys.stderr)
        time.sleep(0.5)  # a sampling period, not a synchronisation
    return peak, trace


def _children_cpu_s() -> float:
    """CPU seconds of this process's children it has waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(spec: Spec, flows: list[Path], base: Path, database_url: str | None, settings: dict,
        args: argparse.Namespace, database_pid: int | None = None) -> Result:
    """One configuration on a fresh gateway; its folder (logs, database) is kept only if it fails."""
    root = base / spec.label
    root.mkdir()
    try:
        with Cluster(root, database_url, spec.workers, settings, database_pid, spec.sshd) as cluster:
            uploads = SftpUploads(cluster.client(), root, flows, cluster.remote, args.sessions, spec.rate)
            try:
                cpu_before, clients_before = cluster.cpu_s(), _children_cpu_s()
                uploads.start()
                peak, trace = follow(cluster, uploads, len(flows), args.rss_every, args.stall)
                cpu = {kind: s - cpu_before.get(kind, 0.0) for kind, s in cluster.cpu_s().items()}
                drops = uploads.wait(timeout=60)
                cpu["sftp clients"] = _children_cpu_s() - clients_before  # the sessions, now ended and waited for
            finally:
                uploads.kill()
            times, outcome = cluster.times(), cluster.outcome()
    except Exception:
        print(f"{spec.label} failed: its gateway logs, sftp logs and database are kept in {root}", file=sys.stderr)
        raise
    except BaseException:  # interrupted: nothing to inspect
        shutil.rmtree(root, ignore_errors=True)
        raise
    shutil.rmtree(root)  # a long run's store and zones are large
    names = [path.name for path in flows]
    first = min(drops[name].start for name in names)
    return Result(spec, len(flows), outcome,
                  seconds=max(times[name]["report_written"] for name in names) - first,
                  upload_seconds=max(drops[name].end for name in names) - first,
                  ack=[times[name]["acknowledged"] - drops[name].end for name in names],
                  report=[times[name]["report_written"] - drops[name].end for name in names],
                  peak_rss_mb=peak, rss_trace=trace,
                  cpu_ms={kind: round(s * 1000 / len(flows), 1) for kind, s in cpu.items()})


# --- the whole run ------------------------------------------------------------------------------------

def gateway_settings(args: argparse.Namespace) -> dict:
    """Config sections for every gateway: leases long enough for a loaded machine, the sessions allowed."""
    settings = {"worker": {"lease_seconds": 30.0},
                "sftp": {"max_files_per_session": args.flows + 1, "max_connections_per_ip": max(8, args.sessions)}}
    if args.threads:
        settings["worker"]["threads"] = args.threads
    if args.validators:
        settings["validate"] = {"processes": args.validators}
    return settings


class Postgres:
    """The throwaway PostgreSQL cluster of the tests, started on first use, one database per run."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack, self.server, self.pid = stack, None, None

    def database(self, stack: ExitStack) -> str:
        if self.server is None:
            bindir = binaries()
            if bindir is None:
                raise LookupError("PostgreSQL server binaries (initdb, pg_ctl) not found")
            self.server = PostgresServer(bindir).start()
            self.pid = int((self.server.data / "postmaster.pid").read_text().split()[0])
            self.stack.callback(self._stop)
        name = self.server.create_database()
        stack.callback(self.server.drop_database, name)
        return self.server.url(name)

    def _stop(self) -> None:
        try:
            self.server.stop()
        except subprocess.CalledProcessError as exc:  # already stopped, e.g. by the Ctrl-C it shares
            print(f"warning: stopping PostgreSQL: {exc}", file=sys.stderr)


def _remove_if_empty(folder: Path) -> None:
    """The run's folder, unless a failed configuration left its own in it."""
    with contextlib.suppress(OSError):
        folder.rmdir()


def print_table(results: list[Result], raw: dict[int, float]) -> None:
    raws = "".join(f" {f'/raw x{k}':>8}" for k in raw)
    print(f"{'database':10} {'workers':>7} {'batch':>5} {'rate':>6} {'flows':>6} {'flows/s':>8} {'inv/s':>7} "
          f"{'upload/s':>8} "
          f"{'ack p50/p99 ms':>15} {'report p50/p99 ms':>18} {'RSS MB':>7}{raws}  complete")
    for r in results:
        ack = f"{percentile(r.ack, 50) * 1000:.0f}/{percentile(r.ack, 99) * 1000:.0f}"
        report = f"{percentile(r.report, 50) * 1000:.0f}/{percentile(r.report, 99) * 1000:.0f}"
        invoices = r.outcome["accepted"] / r.seconds
        ratios = "".join(f" {'-' if r.spec.rate else f'{invoices / v:.2f}':>8}" for v in raw.values())
        print(f"{r.spec.db:10} {r.spec.workers:>7} {r.spec.batch or '-':>5} {r.spec.rate or '-':>6} {r.flows:>6} "
              f"{r.flows / r.seconds:8.1f} "
              f"{invoices:7.1f} {r.flows / r.upload_seconds:8.1f} {ack:>15} {report:>18} {r.peak_rss_mb:7.0f}"
              f"{ratios}  {'yes' if r.complete else 'NO ' + json.dumps(r.outcome)}")
    for r in results:  # where the time goes, against the raw cost of judging one invoice
        cpu = ", ".join(f"{kind} {ms:.1f}" for kind, ms in r.cpu_ms.items())
        print(f"{r.spec.label}: CPU ms per flow: {cpu}; total {sum(r.cpu_ms.values()):.1f} "
              f"(raw: {1000 / raw[1]:.1f} per invoice)")


def print_targets(results: list[Result], raw: dict[int, float]) -> None:
    for r in results:
        if r.spec.workers == CORES and not r.spec.rate:
            ratio = r.outcome["accepted"] / r.seconds / raw[CORES]
            print(f"target {r.spec.db}: {CORES} worker processes reach {ratio:.2f} of the raw rate with {CORES} "
                  f"processes (>= 0.70: {'met' if ratio >= 0.70 else 'NOT met'})")
        if r.spec.half_load:
            p99 = percentile(r.ack, 99)
            print(f"target {r.spec.db}, {r.spec.workers} worker process(es) at half load ({r.spec.rate:.1f} flows/s): "
                  f"p99 drop->ack {p99 * 1000:.0f} ms (< 1000 ms: {'met' if p99 < 1 else 'NOT met'})")
        if len(r.rss_trace) >= 3:
            (at, first), (end, last) = r.rss_trace[1], r.rss_trace[-1]  # the first step still warms up
            growth = (last - first) / first
            print(f"target {r.spec.db}, {r.spec.workers} worker process(es): RSS {first} MB at {at} flows, {last} MB "
                  f"at {end} ({growth:+.1%}; no growth beyond 10%: {'met' if growth <= 0.10 else 'NOT met'})")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=300, help="flows per configuration (default 300)")
    parser.add_argument("--db", default="sqlite,postgresql", help="databases, comma-separated")
    parser.add_argument("--workers", default="1,2", help="worker processes, comma-separated (default 1,2)")
    parser.add_argument("--sessions", type=int, default=4, help="concurrent sftp sessions (default 4)")
    parser.add_argument("--rate", default="0", help="flows/s offered (default 0: as fast as possible); 'half': "
                        "each configuration as fast as possible, then again at half the rate it reached")
    parser.add_argument("--front", choices=("embedded", "sshd"), default="embedded",
                        help="who receives the uploads: the gateway's SFTP server (default), or OpenSSH's sshd "
                        "serving the supplier's in/ folder, the gateway's watcher taking the files (needs root)")
    parser.add_argument("--batch", default="", help="[worker] batch values to compare, comma-separated "
                        "(default: the config's)")
    parser.add_argument("--threads", type=int, default=0, help="worker threads per process (default: the config's)")
    parser.add_argument("--validators", type=int, default=0,
                        help="validator processes per gateway process (default: the config's, one per core)")
    parser.add_argument("--raw-docs", type=int, default=1000, help="documents per raw measurement (at most --flows)")
    parser.add_argument("--rss-flows", type=int, default=0, help="a long run of this many flows, RSS every --rss-every")
    parser.add_argument("--rss-every", type=int, default=0, help="print the RSS every this many flows reported")
    parser.add_argument("--stall", type=float, default=120.0, help="seconds without a flow reported before giving up")
    args = parser.parse_args()
    if args.rss_flows:
        args.flows, args.rss_every = args.rss_flows, args.rss_every or 1000
    return args


def main() -> int:
    args = parse_args()
    sshd = args.front == "sshd"
    if sshd and not (SSHD.exists() and os.geteuid() == 0):
        print(f"--front sshd needs {SSHD} (apt-get install openssh-server) and root", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleanup runs as for Ctrl-C
    databases, workers = args.db.split(","), [int(k) for k in args.workers.split(",")]
    batches = [int(b) for b in args.batch.split(",")] if args.batch else [0]
    settings = gateway_settings(args)
    built = [(name, content) for name, content in candidates() if admissible(content)]
    count = min(args.flows, args.raw_docs)
    print(f"raw rate: {count} documents, 1 process...", file=sys.stderr)
    verdicts, one = raw_rate([content for _, content in built], count, 1)
    templates = [content for (_, content), ok in zip(built, verdicts, strict=True) if ok]
    left_out = [name for (name, _), ok in zip(built, verdicts, strict=True) if not ok]
    raw = {1: one}
    if CORES > 1:
        print(f"raw rate: {count} documents, {CORES} processes...", file=sys.stderr)
        raw[CORES] = raw_rate(templates, count, CORES)[1]
    source = "corpus" if (CORPUS / "manifest.csv").exists() else "samples/flows"
    print(f"{len(templates)} invoices from {source} ({', '.join(left_out) or 'none'} left out: the gateway would "
          f"reject them); {args.flows} flows per configuration over {args.sessions} sftp sessions; "
          f"{'--role' if has_roles() else 'all-roles'} processes; {CORES} cores")
    print("raw rate (check_document + rules, tight loop): "
          + ", ".join(f"{v:.1f} invoices/s with {k} process(es)" for k, v in raw.items()))
    results: list[Result] = []
    with ExitStack() as stack:
        base = Path(tempfile.mkdtemp(prefix="gateway-e2e-"))
        stack.callback(_remove_if_empty, base)
        stack.callback(shutil.rmtree, base / "flows", ignore_errors=True)
        flows = stage_flows(base / "flows", templates, args.flows)
        postgres = Postgres(stack)
        for db in databases:
            for k, batch in ((k, b) for k in workers for b in batches):
                specs = [Spec(db, k, 0.0 if args.rate == "half" else float(args.rate), sshd=sshd, batch=batch)]
                while specs:
                    spec = specs.pop(0)
                    print(f"{spec.label}: {args.flows} flows...", file=sys.stderr)
                    with ExitStack() as run_stack:
                        try:
                            url = postgres.database(run_stack) if db == "postgresql" else None
                        except LookupError as exc:
                            print(f"{db}: skipped: {exc}", file=sys.stderr)
                            break
                        batched = {**settings, "worker": {**settings["worker"], "batch": batch}} if batch else settings
                        result = run(spec, flows, base, url, batched, args, postgres.pid if url else None)
                    results.append(result)
                    print(json.dumps(result.summary(raw, settings)), flush=True)
                    if args.rate == "half" and not spec.half_load:
                        specs.append(Spec(db, k, round(result.flows / result.seconds / 2, 2), half_load=True,
                                          sshd=sshd, batch=batch))
    print()
    print_table(results, raw)
    print_targets(results, raw)
    return 0 if results and all(r.complete for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
