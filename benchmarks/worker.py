"""Worker benchmark: what a flow costs the worker that records it, validation left out.

N single-invoice flows are taken by intake in this process, then one worker (`[worker] batch` flows at a time)
drains them, with one validator process of its own; the log goes to a file at info level, as a running gateway
writes it. Prints the worker's CPU per flow (this process: the validators' processes are not counted; user and
system, the kernel's share, fsyncs mostly), its wall time per flow and the SQL statements it runs per flow (an
executemany counts once); with --statements, those statements by kind. Run it twice, alternating two checkouts
(REPO=...), to compare them on a busy machine.

    python benchmarks/worker.py [-n 200] [--statements]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(os.environ.get("REPO", Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(REPO))

from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from benchmarks.invoices import admissible, candidates, stage_flows  # noqa: E402
from gateway import config as config_module  # noqa: E402
from gateway.app import App  # noqa: E402
from gateway.engine.queue import new_owner  # noqa: E402
from gateway.engine.worker import Worker  # noqa: E402
from gateway.ingest.intake import Arrival, intake  # noqa: E402
from gateway.ops.log import configure_logging  # noqa: E402
from gateway.validate.rules import RulesStage  # noqa: E402
from tests.harness import load_samples, write_config  # noqa: E402

STATEMENTS: Counter[str] = Counter()


@event.listens_for(Engine, "before_cursor_execute")
def _count(conn, cursor, statement, parameters, context, executemany) -> None:
    STATEMENTS[" ".join(statement.split()[:4])[:70]] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="flows")
    parser.add_argument("--statements", action="store_true", help="print the statements per flow by kind")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-worker-"))
    config = write_config(root)
    os.chdir(root)
    load_samples(config)
    configure_logging("info", root / "gateway.log")
    settings = config_module.load(config)
    app = App.from_settings(settings)
    for path in stage_flows(root / "staged", [c for _, c in candidates() if admissible(c)], args.n):
        intake(app, path, Arrival("acme", path.name, "zone"))
    app.rules = RulesStage.from_settings(settings.validation, processes=1)
    app.rules.start()
    worker = Worker(app, new_owner())
    warm = worker.run_once()  # the first batch pays for imports and caches
    STATEMENTS.clear()
    before, wall, count = os.times(), time.perf_counter(), 0
    while taken := worker.run_once():
        count += taken
    after, wall = os.times(), time.perf_counter() - wall
    app.rules.close()
    user, system = (after.user - before.user) * 1000 / count, (after.system - before.system) * 1000 / count
    print(f"{REPO}: {count} flows (after {warm} to warm up): worker CPU {user + system:.2f} ms/flow (user {user:.2f}, "
          f"system {system:.2f}), wall {wall * 1000 / count:.1f} ms/flow, "
          f"{sum(STATEMENTS.values()) / count:.1f} statements/flow")
    if args.statements:
        for statement, times in STATEMENTS.most_common():
            print(f"{times / count:6.2f}  {statement}")


if __name__ == "__main__":
    main()
