"""API benchmark: N invoice flows deposited over the HTTP API, against the same number over SFTP, in one run.

One gateway (`gateway run --role sftp,web,ingest,deliver` beside `--workers` processes of `--role worker`, as
benchmarks/e2e.py starts them), one database, the sample directory and accounts. Three phases, each on its
own distinct invoices (samples/flows/ubl-invoice-ok.xml renumbered per flow), each waiting until every flow
reached its final state before the next starts:

1. api: N flows deposited by `--clients` concurrent httpx clients (one keep-alive connection each), each
   client sending its next flow as soon as the previous one is answered (closed loop). A deposit is
   `POST /api/v1/flows?name=...`, answered 202 once the flow is stored (fsynced), committed and
   acknowledged.
2. sftp: N flows uploaded by as many paramiko clients to the embedded SFTP server (persistent sessions,
   key login done before timing): `put NAME.part` (closed: the server names it), then `posix-rename` to
   NAME, which hands it to intake. The deposit is answered once the rename is; intake (fsync, commit,
   acknowledgement) follows in the server's intake thread, so "to ack" (from the deposit's start to the
   flow's `acknowledged` event) is printed for both channels.
3. api at half load: `--half-flows` flows (default N / 2) deposited at half the rate phase 1 reached, open
   loop: flow i is due at start + i / rate, whatever became of the others, and its latency counts from
   when it was due (a late send counts as waiting).

Printed per phase: deposits/s (first deposit started to last answered), deposit latency p50/p99 as the
client saw it and, for the API, inside the server (the `ms` of its http_request log lines), acked/s (first
deposit started to last `acknowledged` event: stored safely), to-ack p50/p99, flows finished/s (to the last
flow's final state), the flows' final states, and the CPU each kind of process spent per flow over the
phase, deposits and pipeline (front: web, SFTP server, intake and deliveries; workers; their validators; the
database server; the clients, i.e. this process while depositing); then the ratios api / sftp, and the
targets: the API takes deposits at least as fast as SFTP (answered, and acknowledged), p99 deposit latency
under 100 ms at half load. Warm-up: one flow per client on each channel first (connections opened, code
paths warm), not counted. The last line is the whole result as JSON; the exit status is 1 unless every
flow ended INTEGRE.

    python benchmarks/api.py [--flows 1000] [--clients 8] [--workers 1] [--half-flows N] [--db sqlite|postgresql]
                             [--py-spy DIR]

--py-spy DIR records the front process with py-spy (`.venv/bin/pip install py-spy`) during phase 1 and writes
DIR/front-api.speedscope.json (https://www.speedscope.app) and DIR/front-api.txt (the hottest functions, own
and total, and the threads); the sampling slows the front process, so that run's figures are not the real ones.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import paramiko  # noqa: E402
from sqlalchemy import func  # noqa: E402
from sqlmodel import Session, select  # noqa: E402

from benchmarks.common import percentile  # noqa: E402
from benchmarks.e2e import Cluster, Postgres, _epoch  # noqa: E402
from benchmarks.invoices import SUPPLIER  # noqa: E402
from gateway.data.models import Event, Flow  # noqa: E402
from tests.harness import SAMPLES, cli, renumber, wait_for  # noqa: E402
from tests.web_harness import log_lines  # noqa: E402

FRONT = "sftp,web,ingest,deliver"
SAMPLE = SAMPLES / "flows" / "ubl-invoice-ok.xml"
HALF_TARGET_S = 0.100


# --- flows --------------------------------------------------------------------------------------------

def make_flows(prefix: str, n: int) -> list[tuple[str, bytes]]:
    """n distinct invoices (own number each): (file name, content)."""
    base = SAMPLE.read_bytes()
    return [(f"{prefix.lower()}-{i:06d}.xml", renumber(base, f"{prefix}-{i:06d}")) for i in range(n)]


# --- clients ------------------------------------------------------------------------------------------

class ApiClient:
    """One keep-alive HTTP connection, depositing as the supplier."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def deposit(self, name: str, content: bytes) -> None:
        answer = self.http.post("/api/v1/flows", params={"name": name}, content=content)
        if answer.status_code != 202:
            raise RuntimeError(f"deposit of {name}: {answer.status_code} {answer.text[:500]}")

    def close(self) -> None:
        self.http.close()


class SftpClient:
    """One paramiko SSH session with its SFTP channel, logged in with the supplier's key."""

    def __init__(self, port: int, key: Path, host_key: paramiko.PKey) -> None:
        self.ssh = paramiko.SSHClient()
        self.ssh.get_host_keys().add(f"[127.0.0.1]:{port}", host_key.get_name(), host_key)
        self.ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
        self.ssh.connect("127.0.0.1", port, username=SUPPLIER, pkey=paramiko.Ed25519Key(filename=str(key)),
                         look_for_keys=False, allow_agent=False, timeout=30)
        self.sftp = self.ssh.open_sftp()

    def deposit(self, name: str, content: bytes) -> None:
        """Upload under a temporary name (putfo closes, then stats it), then rename it to its final name."""
        self.sftp.putfo(io.BytesIO(content), f"/in/{name}.part")
        self.sftp.posix_rename(f"/in/{name}.part", f"/in/{name}")

    def close(self) -> None:
        self.sftp.close()
        self.ssh.close()


@dataclass
class Deposits:
    """What the clients saw: per flow, when its deposit was due (or began) and when it was answered."""

    names: list[str]
    start: list[float]  # time.time(): when it began, or when it was due (paced)
    sent: list[float]  # when it was actually sent
    end: list[float]
    client_cpu_s: float

    @property
    def seconds(self) -> float:
        return max(self.end) - min(self.start)

    @property
    def rate(self) -> float:
        return len(self.names) / self.seconds

    @property
    def latency(self) -> list[float]:
        return [e - s for s, e in zip(self.start, self.end, strict=True)]


def deposit_all(clients: list, flows: list[tuple[str, bytes]], rate: float = 0.0) -> Deposits:
    """Every flow deposited by the clients, each taking the next flow when it is free.

    rate 0: each client sends its next flow as soon as its previous one is answered. Otherwise flow i is
    due at start + i / rate; a client sleeps until then, and the flow's latency counts from then.
    """
    n = len(flows)
    start, sent, end = [0.0] * n, [0.0] * n, [float("nan")] * n
    lock, taken, failed = threading.Lock(), [0], []
    began = time.time() + 0.05

    def run(client) -> None:
        while not failed:
            with lock:
                i = taken[0]
                taken[0] += 1
            if i >= n:
                return
            if rate:
                due = began + i / rate
                time.sleep(max(0.0, due - time.time()))
            now = time.time()
            start[i], sent[i] = (due if rate else now), now
            try:
                client.deposit(*flows[i])
            except Exception as exc:
                failed.append(exc)
                return
            end[i] = time.time()

    cpu_before = _self_cpu_s()
    threads = [threading.Thread(target=run, args=(client,), daemon=True) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise RuntimeError(f"a deposit failed: {failed[0]!r}") from failed[0]
    return Deposits([name for name, _ in flows], start, sent, end, _self_cpu_s() - cpu_before)


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the gateway --------------------------------------------------------------------------------------

class Gateway(Cluster):
    """e2e's cluster with the web role in its front process: its URL, a token, and per-phase queries."""

    def __init__(self, root: Path, database_url: str | None, workers: int, settings: dict,
                 database_pid: int | None = None) -> None:
        super().__init__(root, database_url, workers, settings, database_pid, front_roles=FRONT)
        self.token = cli(root / "config.toml", "accounts", "token", SUPPLIER).strip()

    def __enter__(self) -> Gateway:
        super().__enter__()
        self.url = wait_for(self._web_url, 60, "the web server's start")
        self.host_key = paramiko.Ed25519Key(filename=str(self.root / "var" / "sftp_host_ed25519_key"))
        return self

    def _web_url(self) -> str | None:
        self.check_alive()
        for line in log_lines(self.processes[0].log):
            if line.get("event") == "web_started":
                return f"http://{line['host']}:{line['port']}"
        return None

    def deposit_times(self, since: float, until: float) -> list[float]:
        """The ms of the deposits (POST /api/v1/flows answered 202) the front process logged between since
        and until (epoch s): the time each spent in the server, from the request read to the answer."""
        found = []
        for line in log_lines(self.processes[0].log):
            if line.get("event") == "http_request" and line["method"] == "POST" and line["status"] == 202 \
                    and since <= datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp() <= until:
                found.append(line["ms"])
        return found

    @property
    def front_pid(self) -> int:
        return self.processes[0].proc.pid

    def finished(self, prefix: str) -> int:
        with Session(self.db) as session:
            return session.exec(select(func.count()).select_from(Flow).where(
                Flow.original_name.startswith(prefix), Flow.finished_at.is_not(None))).one()

    def wait_finished(self, prefix: str, n: int, stall: float) -> None:
        """Poll until the n flows named prefix* have their final state; fails when a process dies or no
        flow finishes for `stall` seconds."""
        done, moved = 0, time.monotonic()
        while done < n:
            self.check_alive()
            count = self.finished(prefix)
            if count != done:
                done, moved = count, time.monotonic()
            elif time.monotonic() - moved > stall:
                raise RuntimeError(f"no flow finished for {stall:.0f} s ({done} of {n} {prefix}* finished)")
            time.sleep(0.25)

    def flows(self, prefix: str) -> dict[str, dict]:
        """Original name -> state, finished and acknowledged (epoch s; NaN if not yet) of the flows named
        prefix*, in one query (one snapshot)."""
        acknowledged = (Event.flow_id == Flow.id) & (Event.kind == "acknowledged")
        query = select(Flow.original_name, Flow.state, Flow.finished_at, Event.at) \
            .outerjoin(Event, acknowledged).where(Flow.original_name.startswith(prefix))
        with Session(self.db) as session:
            return {name: {"state": str(getattr(state, "value", state)),
                           "finished": _epoch(finished) if finished else float("nan"),
                           "acknowledged": _epoch(at) if at else float("nan")}
                    for name, state, finished, at in session.exec(query)}


# --- one phase ----------------------------------------------------------------------------------------

@dataclass
class Phase:
    label: str
    channel: str
    offered: float  # flows/s offered; 0: closed loop
    deposits: Deposits
    flows: dict[str, dict]
    cpu_ms: dict[str, float]  # per flow, by kind of process
    server_ms: list[float]  # API phases: each deposit's time inside the server, from its http_request log line

    @property
    def n(self) -> int:
        return len(self.deposits.names)

    @property
    def finished_rate(self) -> float:
        return self.n / (max(f["finished"] for f in self.flows.values()) - min(self.deposits.start))

    @property
    def acked_rate(self) -> float:
        """Flows acknowledged (stored safely) per second: first deposit started to last acknowledgement."""
        return self.n / (max(f["acknowledged"] for f in self.flows.values()) - min(self.deposits.start))

    @property
    def to_ack(self) -> list[float]:
        return [self.flows[name]["acknowledged"] - start for name, start in zip(self.deposits.names,
                                                                                self.deposits.start, strict=True)]

    @property
    def states(self) -> dict[str, int]:
        return dict(Counter(f["state"] for f in self.flows.values()))

    def summary(self) -> dict:
        lat, ack = self.deposits.latency, self.to_ack
        return {"phase": self.label, "channel": self.channel, "flows": self.n, "offered_per_s": self.offered or None,
                "deposits_per_s": round(self.deposits.rate, 1),
                "deposit_p50_ms": round(percentile(lat, 50) * 1000, 1),
                "deposit_p99_ms": round(percentile(lat, 99) * 1000, 1),
                "deposit_max_ms": round(max(lat) * 1000, 1),
                "to_ack_p50_ms": round(percentile(ack, 50) * 1000, 1),
                "to_ack_p99_ms": round(percentile(ack, 99) * 1000, 1), "acked_per_s": round(self.acked_rate, 1),
                **({"server_p50_ms": round(percentile(self.server_ms, 50), 1),
                    "server_p99_ms": round(percentile(self.server_ms, 99), 1)} if self.server_ms else {}),
                "finished_per_s": round(self.finished_rate, 2), "states": self.states, "cpu_ms_per_flow": self.cpu_ms}


def run_phase(gateway: Gateway, label: str, channel: str, clients: list, flows: list[tuple[str, bytes]],
              prefix: str, rate: float, stall: float, profile: Callable[[], Callable[[], None]] | None = None) -> Phase:
    print(f"{label}: {len(flows)} flows over {channel}" + (f" at {rate:.1f}/s" if rate else "") + "...",
          file=sys.stderr, flush=True)
    cpu_before = gateway.cpu_s()
    stop_profile = profile() if profile else None
    try:
        deposits = deposit_all(clients, flows, rate)
    finally:
        if stop_profile:
            stop_profile()
    print(f"  deposited at {deposits.rate:.1f}/s; waiting for the pipeline...", file=sys.stderr, flush=True)
    gateway.wait_finished(prefix, len(flows), stall)
    cpu = {kind: s - cpu_before.get(kind, 0.0) for kind, s in gateway.cpu_s().items()}
    cpu["clients"] = deposits.client_cpu_s
    server = gateway.deposit_times(min(deposits.start), max(deposits.end)) if channel == "api" else []
    return Phase(label, channel, rate, deposits, gateway.flows(prefix),
                 {kind: round(s * 1000 / len(flows), 1) for kind, s in cpu.items()}, server)


def warm_up(gateway: Gateway, api: list[ApiClient], sftp: list[SftpClient], stall: float) -> None:
    """One flow per client on each channel, waited for: connections opened, every code path once."""
    for prefix, clients in (("WARMA", api), ("WARMS", sftp)):
        deposit_all(clients, make_flows(prefix, len(clients)))
        gateway.wait_finished(prefix.lower(), len(clients), stall)


# --- profiling ----------------------------------------------------------------------------------------

def py_spy(pid: int, folder: Path) -> Callable[[], Callable[[], None]]:
    """A starter of `py-spy record` on pid (all threads, native frames off), whose stopper writes the
    speedscope file and a text summary of the hottest functions."""
    binary = Path(sys.executable).parent / "py-spy"
    if not binary.exists():
        found = shutil.which("py-spy")
        if found is None:
            raise SystemExit("--py-spy: py-spy not found (.venv/bin/pip install py-spy)")
        binary = Path(found)
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / "front-api.speedscope.json"

    def start() -> Callable[[], None]:
        with open(folder / "py-spy.log", "wb") as log:  # py-spy keeps its own descriptor
            proc = subprocess.Popen([str(binary), "record", "--pid", str(pid), "--rate", "250", "--format",
                                     "speedscope", "--output", str(output), "--nonblocking"],
                                    stdout=subprocess.DEVNULL, stderr=log)
        time.sleep(1.0)  # attached before the first deposit

        def stop() -> None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
            if output.exists():
                (folder / "front-api.txt").write_text(speedscope_summary(output))
                print(f"  py-spy: {output}, {folder / 'front-api.txt'}", file=sys.stderr)
        return stop
    return start


def speedscope_summary(path: Path, top: int = 40) -> str:
    """The functions with the most samples: own (on top of the stack) and total (anywhere in it), over every
    thread; then the samples by thread."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    own, total, threads, samples = Counter(), Counter(), Counter(), 0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            samples += weight
            threads[profile["name"]] += weight
            if stack:
                own[stack[-1]] += weight
            for index in set(stack):
                total[index] += weight

    def label(index: int) -> str:
        frame = frames[index]
        return f"{frame['name']} ({frame.get('file', '?').split('site-packages/')[-1]}:{frame.get('line', '?')})"

    lines = [f"{samples:.1f} s sampled (threads not idle, all summed)"]
    for title, counter in (("own", own), ("total", total)):
        lines += ["", f"by {title} samples:"]
        lines += [f"{100 * count / samples:5.1f}%  {label(index)}" for index, count in counter.most_common(top)]
    lines += ["", "by thread:"] + [f"{100 * count / samples:5.1f}%  {name}" for name, count in threads.most_common()]
    return "\n".join(lines) + "\n"


# --- the run ------------------------------------------------------------------------------------------

def _ms(values: list[float], scale: float = 1000) -> str:
    return f"{percentile(values, 50) * scale:.1f}/{percentile(values, 99) * scale:.1f}" if values else "-"


def print_results(phases: list[Phase], workers: int, clients: int, db: str) -> dict:
    print(f"\n{db}, front process ({FRONT}) + {workers} worker process(es), {clients} clients per channel, "
          f"{len(SAMPLE.read_bytes())}-byte invoices")
    print(f"{'phase':12} {'flows':>5} {'deposits/s':>10} {'deposit p50/p99 ms':>18} {'in server':>12} "
          f"{'acked/s':>7} {'to-ack p50/p99 ms':>17} {'finished/s':>10}  states")
    for p in phases:
        print(f"{p.label:12} {p.n:>5} {p.deposits.rate:10.1f} {_ms(p.deposits.latency):>18} {_ms(p.server_ms, 1):>12} "
              f"{p.acked_rate:7.1f} {_ms(p.to_ack):>17} {p.finished_rate:10.1f}  {json.dumps(p.states)}")
    print("CPU ms per flow, by process:")
    for p in phases:
        print(f"  {p.label:12} " + ", ".join(f"{kind} {ms:.1f}" for kind, ms in p.cpu_ms.items())
              + f"; total {sum(p.cpu_ms.values()):.1f}")
    api, sftp, half = phases
    ratios = {"deposits_per_s": api.deposits.rate / sftp.deposits.rate,
              "deposit_p50": percentile(api.deposits.latency, 50) / percentile(sftp.deposits.latency, 50),
              "deposit_p99": percentile(api.deposits.latency, 99) / percentile(sftp.deposits.latency, 99),
              "acked_per_s": api.acked_rate / sftp.acked_rate,
              "to_ack_p50": percentile(api.to_ack, 50) / percentile(sftp.to_ack, 50),
              "to_ack_p99": percentile(api.to_ack, 99) / percentile(sftp.to_ack, 99),
              "finished_per_s": api.finished_rate / sftp.finished_rate,
              "front_cpu_ms": api.cpu_ms["front"] / sftp.cpu_ms["front"]}
    print("api / sftp: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    rate_met, acked_met = api.deposits.rate >= sftp.deposits.rate, api.acked_rate >= sftp.acked_rate
    p99 = percentile(half.deposits.latency, 99)
    print(f"target: API deposits/s >= SFTP's: answered {api.deposits.rate:.1f} vs {sftp.deposits.rate:.1f} "
          f"({'met' if rate_met else 'NOT met'}); acknowledged {api.acked_rate:.1f} vs {sftp.acked_rate:.1f} "
          f"({'met' if acked_met else 'NOT met'}). An API deposit is answered once stored and acknowledged, "
          "an SFTP one before intake")
    print(f"target: p99 deposit latency at half load ({half.offered:.1f}/s) < {HALF_TARGET_S * 1000:.0f} ms: "
          f"{p99 * 1000:.1f} ms ({'met' if p99 < HALF_TARGET_S else 'NOT met'})")
    return {"db": db, "workers": workers, "clients": clients, "phases": [p.summary() for p in phases],
            "ratios_api_over_sftp": {k: round(v, 3) for k, v in ratios.items()},
            "targets": {"api_deposits_answered_at_least_sftp": rate_met, "api_deposits_acked_at_least_sftp": acked_met,
                        "half_load_p99_under_100ms": p99 < HALF_TARGET_S}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, default=1000, help="flows per channel (default 1000)")
    parser.add_argument("--half-flows", type=int, default=0, help="flows at half load (default: half of --flows)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients per channel (default 8)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--stall", type=float, default=120.0, help="seconds without a flow finished before giving up")
    parser.add_argument("--py-spy", type=Path, metavar="DIR", help="record the front process during the API phase")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleanup runs as for Ctrl-C
    half_n = args.half_flows or max(args.flows // 2, 100)
    total = args.flows * 2 + half_n + 2 * args.clients
    settings = {"worker": {"lease_seconds": 30.0},
                "sftp": {"max_files_per_session": total + 1, "max_connections_per_ip": args.clients + 2,
                         "max_connections": args.clients + 8}}
    flows = {prefix: make_flows(prefix, n) for prefix, n in (("API", args.flows), ("SFTP", args.flows),
                                                             ("HALF", half_n))}
    with ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="gateway-api-bench-"))
        kept = [False]
        stack.callback(lambda: kept[0] or shutil.rmtree(root, ignore_errors=True))
        postgres = Postgres(stack)
        url, pid = (postgres.database(stack), None) if args.db == "postgresql" else (None, None)
        if url:
            pid = postgres.pid
        print(f"starting the gateway in {root}...", file=sys.stderr, flush=True)
        try:
            with Gateway(root, url, args.workers, settings, pid) as gateway:
                api = [ApiClient(gateway.url, gateway.token) for _ in range(args.clients)]
                sftp = [SftpClient(gateway.port, gateway.key, gateway.host_key) for _ in range(args.clients)]
                try:
                    warm_up(gateway, api, sftp, args.stall)
                    profile = py_spy(gateway.front_pid, args.py_spy) if args.py_spy else None
                    phases = [run_phase(gateway, "api", "api", api, flows["API"], "api-", 0.0, args.stall, profile),
                              run_phase(gateway, "sftp", "sftp", sftp, flows["SFTP"], "sftp-", 0.0, args.stall)]
                    half_rate = phases[0].deposits.rate / 2
                    phases.append(run_phase(gateway, f"api @{half_rate:.0f}/s", "api", api, flows["HALF"], "half-",
                                            half_rate, args.stall))
                finally:
                    for client in api + sftp:
                        client.close()
        except Exception:
            kept[0] = True
            print(f"failed: the gateway's logs and database are kept in {root}", file=sys.stderr)
            raise
    result = print_results(phases, args.workers, args.clients, args.db)
    print(json.dumps(result))
    complete = all(p.states == {"INTEGRE": p.n} for p in phases)
    if not complete:
        print("NOT every flow ended INTEGRE: " + ", ".join(f"{p.label} {p.states}" for p in phases))
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
