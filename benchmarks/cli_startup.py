"""CLI start-up benchmark: wall time of the commands an operator types most, against the target of 0.5 s.

A temporary gateway is made with the sample directory and accounts, and one invoice taken through a running
gateway (so that `invoices show` finds one). Each command is then run `--repeat` times as a new process, as an
operator would run it, and its best and median times printed; the best is held against the target, the
median says how noisy the machine was. Beside them: Python's own start-up and the import of the CLI module
alone (and of the libraries it stands on), the floor under every command, and the imports that cost `flows list`
most (`python -X importtime`).

    python benchmarks/cli_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness import (  # noqa: E402
    ACK_NS,
    SAMPLES,
    GatewayProcess,
    ack_for_name,
    drop,
    load_samples,
    outbox,
    wait_for,
    write_config,
)

TARGET = 0.5  # seconds, for each of COMMANDS
NUMBER = "ACME-2026-0101"  # the UBL sample's invoice number
COMMANDS = {"flows list": ["flows", "list"], "queue": ["queue"], "invoices show": ["invoices", "show", NUMBER]}


def seconds(argv: list[str], repeat: int) -> list[float]:
    """Wall times of argv run repeat times, each a new process; it must succeed."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        times.append(time.perf_counter() - start)
    return times


def with_an_invoice(root: Path) -> Path:
    """A configuration under root with the samples loaded and the UBL sample's invoice delivered."""
    config = write_config(root, {"validate": {"processes": 1}})
    load_samples(config)
    process = GatewayProcess(config)
    process.start()
    try:
        drop(root, "acme", "startup.xml", (SAMPLES / "flows" / "ubl-invoice-ok.xml").read_bytes())
        ack = wait_for(lambda: ack_for_name(root, "acme", "startup.xml"), 120, "the acknowledgement")
        flow_id = ack.findtext("a:flowId", namespaces=ACK_NS)
        wait_for((outbox(root, "acme") / f"{flow_id}.report.xml").exists, 120, "the report")
    finally:
        process.stop()
    return config


def costliest_imports(config: Path, count: int = 10) -> list[tuple[str, float]]:
    """The modules `flows list` imports in the first two levels of its import tree, by cumulative time."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "gateway", "--config", str(config), "flows",
                             "list"], capture_output=True, text=True, check=True, cwd=REPO)
    found = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            depth = (len(name) - len(name.lstrip())) // 2  # one space, then two more at each level
            if cumulative.strip().isdigit() and depth <= 1:
                found.append(("  " * depth + name.strip(), int(cumulative) / 1e6))
    return sorted(found, key=lambda item: -item[1])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = with_an_invoice(Path(tmp))
        gateway = [sys.executable, "-m", "gateway", "--config", str(config)]
        floors = {"python -c pass": [sys.executable, "-c", "pass"],
                  "import click, sqlalchemy": [sys.executable, "-c", "import click, sqlalchemy"],
                  "import gateway.cli": [sys.executable, "-c", "import gateway.cli"]}
        print(f"best and median of {args.repeat} runs, each a new process; target {TARGET} s")
        for name, argv in floors.items():
            times = seconds(argv, args.repeat)
            print(f"  {name:24} {min(times):.3f} s  (median {statistics.median(times):.3f} s)")
        met = True
        for name, command in COMMANDS.items():
            times = seconds(gateway + command, args.repeat)
            met &= min(times) < TARGET
            print(f"  gateway {name:16} {min(times):.3f} s  (median {statistics.median(times):.3f} s)  "
                  f"{'under' if min(times) < TARGET else 'OVER'} the target")
        print("costliest imports of `gateway flows list` (python -X importtime, cumulative):")
        for module, spent in costliest_imports(config):
            print(f"  {module:32} {spent:.3f} s")
        print(f"target {TARGET} s {'met' if met else 'NOT met'} by every command")


if __name__ == "__main__":
    main()
