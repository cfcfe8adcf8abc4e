"""Rules-stage benchmark: invoices/s through the validator pool with 1 and 2 processes, against the raw rate.

The documents are the XSD-valid invoices of ../shared/corpus (samples/flows when it is absent), each judged
under the plain EN 16931 profile, skipping those whose pack is not installed. The raw rate is the same work
(Engine.check: parse, select, transform, SVRL, lines) in a tight loop in this process, packs compiled and
warmed up first. The pool is fed by twice as many threads as it has processes, as the gateway's workers
would. Each way is measured `--repeat` times, interleaved, and its best rate kept: on a shared machine the
slower runs measure the neighbours. Last, a 6,100-line invoice (the UBL sample's lines repeated) is timed
in a validator process, with that process's peak RSS.

    python benchmarks/validate.py [-n 2000] [--repeat 3] [--lines 6100]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from tempfile import TemporaryDirectory

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import peak_rss_mb  # noqa: E402
from gateway.ops.log import configure_logging  # noqa: E402
from gateway.validate import check_document  # noqa: E402
from gateway.validate.rules import ValidatorPool, inventory, packs_dir  # noqa: E402
from gateway.validate.rules.catalog import catalog  # noqa: E402
from tests.harness import CORPUS, SAMPLES  # noqa: E402
from tests.rules_harness import big_invoice  # noqa: E402

PROFILE = "en16931"
NEWLINE = b"\n"
RAW = "raw, one process, tight loop"
Document = tuple[bytes, str]  # content, syntax


def documents() -> tuple[list[Document], list]:
    """XSD-valid documents whose EN 16931 pack is usable here, and those packs."""
    usable = inventory(packs_dir()).for_roles({"en16931"})
    families = {pack.syntax for pack in usable}
    folder = CORPUS if CORPUS.is_dir() else SAMPLES / "flows"
    found = []
    for path in sorted(folder.glob("*.xml")):
        content = path.read_bytes()
        checked = check_document(content)
        if checked.valid and checked.syntax and catalog().family_of(checked.syntax).name in families:
            found.append((content, checked.syntax))
    return found, usable


def workload(docs: list[Document], n: int) -> list[Document]:
    return [docs[i % len(docs)] for i in range(n)]


def warming(work: list[Document]) -> list[Document]:
    """An untimed first pass, as a long-lived validator has had: Saxon initialises some rules lazily."""
    return work[: len(work) // 10]


Judge = Callable[[list[Document]], list]  # judges documents, returns their verdicts


def pool_judge(pool: ValidatorPool, threads: ThreadPoolExecutor) -> Judge:
    """The documents through a pool, fed by twice as many threads as it has processes."""
    return lambda docs: list(threads.map(lambda doc: pool.check(doc[0], doc[1], PROFILE), docs))


def raw_judge(packs: list, scratch: Path) -> Judge:
    """The same checks in a tight loop in this process (spawned pools are not affected by its Saxon)."""
    from gateway.validate.rules.engine import Engine

    engine = Engine(packs, scratch)
    engine.warm_up()
    return lambda docs: [engine.check(content, syntax, PROFILE) for content, syntax in docs]


def rate(judge: Judge, work: list[Document]) -> float:
    start = time.perf_counter()
    verdicts = judge(work)
    elapsed = time.perf_counter() - start
    assert all(v.packs for v in verdicts), "a document was not judged"
    return len(work) / elapsed


def best_rates(packs: list, work: list[Document], repeat: int) -> dict[str, float]:
    """The best of `repeat` interleaved measurements of each way, so a noisy neighbour spoils none of them."""
    with ExitStack() as stack:
        runs = {}
        for processes in (1, 2):
            pool = stack.enter_context(ValidatorPool(packs, processes=processes, budget=60.0))
            threads = stack.enter_context(ThreadPoolExecutor(2 * processes))
            runs[f"pool, {processes} process(es)"] = pool_judge(pool, threads)
        runs[RAW] = raw_judge(packs, Path(stack.enter_context(TemporaryDirectory())))
        for judge in runs.values():
            judge(warming(work))
        rates: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeat):
            for name, judge in runs.items():
                rates[name].append(rate(judge, work))
    for name, values in rates.items():
        print(f"  {name}: {', '.join(f'{v:.1f}' for v in values)}", file=sys.stderr)
    return {name: max(values) for name, values in rates.items()}


def big_document(packs: list, lines: int) -> None:
    content = big_invoice(lines)
    ubl = [pack for pack in packs if pack.syntax == "ubl"]
    with ValidatorPool(ubl, processes=1, budget=600.0) as pool:
        (pid,) = pool.pids()
        before = peak_rss_mb(pid)
        start = time.perf_counter()
        verdict = pool.check(content, "ubl-invoice", PROFILE)
        elapsed = time.perf_counter() - start
        after = peak_rss_mb(pid)
    print(f"{content.count(NEWLINE) + 1:,}-line invoice ({len(content):,} bytes): {elapsed:.2f} s, validator "
          f"peak RSS {after:.0f} MB ({before:.0f} MB before it), {len(verdict.findings)} findings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="documents per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each way, the best kept")
    parser.add_argument("--lines", type=int, default=6100, help="lines of the large invoice")
    args = parser.parse_args()
    configure_logging("warning")  # the pool's start and stop lines would interleave with the figures
    docs, packs = documents()
    work = workload(docs, args.n)
    print(f"{len(docs)} XSD-valid documents, packs {', '.join(p.name for p in packs)}; {args.n} per measurement, "
          f"best of {args.repeat}")
    rates = best_rates(packs, work, args.repeat)
    raw = rates[RAW]
    for name, value in sorted(rates.items()):
        print(f"{name + ':':30} {value:8.1f} invoices/s  ({value / raw:.2f}x raw)")
    big_document(packs, args.lines)


if __name__ == "__main__":
    main()
