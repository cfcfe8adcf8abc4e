"""The raw rate: what a worker does with an invoice before routing (check_document, then the rules engine),
in a tight loop, in one or several spawned processes, without the pipeline around it."""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from pathlib import Path

from gateway.config import ValidateSettings
from gateway.validate import check_document
from gateway.validate.rules.engine import Engine
from gateway.validate.rules.selection import roles
from gateway.validate.rules.stage import usable_packs


def _judge(engine: Engine, content: bytes, profile: str) -> bool:
    """What a worker does with a document before routing: check_document, then the rules."""
    checked = check_document(content)
    return checked.valid and engine.check(content, checked.syntax, profile).valid


def _measure(templates: list[bytes], count: int, index: int, step: int, barrier, results) -> None:
    """One raw process: its engine warmed on every template (their verdicts), then its share of count
    documents of the valid ones, timed from the moment all processes are ready."""
    settings = ValidateSettings()  # the gateway's defaults: profile auto, the installed packs
    with tempfile.TemporaryDirectory() as scratch:
        engine = Engine(usable_packs(settings, roles(settings.profile)), Path(scratch))
        verdicts = [_judge(engine, content, settings.profile) for content in templates]
        valid = [content for content, ok in zip(templates, verdicts, strict=True) if ok] or templates
        work = [valid[i % len(valid)] for i in range(index, count, step)]
        barrier.wait(timeout=600)
        start = time.monotonic()
        for content in work:
            _judge(engine, content, settings.profile)
        results.put((verdicts, len(work), start, time.monotonic()))


def raw_rate(templates: list[bytes], count: int, processes: int) -> tuple[list[bool], float]:
    """Each template's verdict (XSD + rules), and documents/s of `processes` spawned processes judging count
    documents together in a tight loop."""
    context = multiprocessing.get_context("spawn")  # no Saxon inherited through fork
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_measure, args=(templates, count, i, processes, barrier, results),
                               daemon=True) for i in range(processes)]
    for worker in workers:
        worker.start()
    try:
        done = [results.get(timeout=900) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    judged = sum(n for _, n, _, _ in done)
    return done[0][0], judged / (max(end for *_, end in done) - min(start for _, _, start, _ in done))
