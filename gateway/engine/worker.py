"""Workers: claim a batch of flows (or a due delivery), work on it, repeat.

A worker serves the queues it is given: flows (the `worker` role of `gateway run`), deliveries (the
`deliver` role), or both in turn. While it finishes a batch of flows (records, delivers, reports), it claims the
next and has it judged by a thread of its own (gateway.engine.pipeline.prepare): the validators do not wait for
the database. All workers of a process share one lease owner id; the process's
heartbeat renews the leases they hold, so a row is taken over by others only when the whole process
has died. A full disk or the database out of reach is no failure of the work in hand: the worker keeps
it, and tries it again until there is room or an answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from gateway.app import App
from gateway.data.models import Delivery, Flow
from gateway.engine import pipeline, queue
from gateway.ops import dbdown, diskfull
from gateway.ops.log import log
from gateway.route import delivery


@dataclass(frozen=True)
class _Ahead:
    """The next batch of flows, claimed, and its preparation under way."""

    claimed: list[tuple[str, int]]
    prepared: Future[pipeline.Prepared]


class Worker:
    def __init__(self, app: App, owner: str, queues: Sequence[queue.Queued] = (Flow, Delivery)) -> None:
        self.app = app
        self.owner = owner
        self._stop = threading.Event()  # run()'s, so that a wait for room ends with the gateway
        work: dict[queue.Queued, Callable[[list], None]] = {Flow: self._process, Delivery: self._deliver}
        self._queues = [(model, work[model]) for model in queues]
        self._full: dict[queue.Queued, bool] = {}  # whether the last claim of each queue came back full
        self._ahead: _Ahead | None = None
        self._looked_from: list | None = None  # the batch that last claimed the next one
        self._preparer = ThreadPoolExecutor(1, thread_name_prefix="prepare") if Flow in queues else None

    def run_once(self) -> int:
        """Take rows from the first of its queues that has some ready; returns how many (0: no work). The
        reference data is read again first if it changed (gateway.data.reference): a poll sees the changes before it."""
        self.app.reference.refresh()
        for model, work in self._queues:
            if taken := self._once(model, work):
                return taken
        return 0

    def _process(self, claimed: list[tuple[str, int]]) -> None:
        began = time.monotonic()
        if self._ahead is not None and self._ahead.claimed is claimed:
            ahead, self._ahead = self._ahead, None
            prepared = ahead.prepared.result()  # what failed there fails here: the batch is taken again
        else:  # kept, whatever happens here: its flows are leased to this worker, which alone will take them
            prepared = pipeline.prepare(self.app, claimed, self.owner)
        if claimed is not self._looked_from:  # not when finishing it again: its leases may have lapsed meanwhile
            self._looked_from = claimed
            self._look_ahead()
        pipeline.finish(self.app, prepared, self.owner)
        self.app.disk.clear(since=began)  # their reports were written

    def _look_ahead(self) -> None:
        """Claim the next batch of flows, unless one is, and have it prepared meanwhile."""
        if self._ahead is None and self._preparer is not None and not self._stop.is_set():
            claimed = self._claim(Flow)
            if claimed:
                self._ahead = _Ahead(claimed, self._preparer.submit(pipeline.prepare, self.app, claimed, self.owner))

    def _deliver(self, claimed: list[tuple[int, int]]) -> None:
        for delivery_id, _attempts in claimed:
            delivery.attempt(self.app, delivery_id)

    def _once(self, model: queue.Queued, work: Callable[[list], None]) -> int:
        """Claim a batch of model's rows (flows: up to [worker] batch, or the batch claimed ahead; deliveries one
        at a time) and work on it."""
        claimed = self._ahead.claimed if model is Flow and self._ahead is not None else self._claim(model)
        if claimed:
            self._work(model, work, claimed)
        return len(claimed)

    def _claim(self, model: queue.Queued) -> list[tuple[Any, int]]:
        limit = self.app.settings.worker.batch if model is Flow else 1
        claimed = queue.claim(self.app.engine, self.owner, self.app.settings.worker.lease_seconds, model, limit,
                              look=not self._full.get(model))
        self._full[model] = len(claimed) == limit
        return claimed

    def _work(self, model: queue.Queued, work: Callable[[list], None], claimed: list[tuple[Any, int]]) -> None:
        """Work on claimed rows; a batch that fails is worked on again row by row, and a row that fails alone is
        given back for later: the worker goes on."""
        ids = [row_id for row_id, _attempts in claimed]
        try:
            self._until_room(lambda: work(claimed), queue=queue.table_of(model).name, ids=ids)
        except Exception:  # whatever broke, the worker goes on: the rows are taken again, then given back
            if len(claimed) > 1:
                log.exception("batch_failed", queue=queue.table_of(model).name, ids=ids)  # each is taken again alone
                for row in claimed:
                    self._work(model, work, [row])
                return
            [(row_id, attempts)] = claimed
            log.exception("work_failed", queue=queue.table_of(model).name, id=row_id, attempt=attempts)
            queue.release(self.app.engine, row_id, self.owner, delay=min(60.0, 2.0 ** attempts), model=model)

    def _until_room(self, step: Callable[[], None], **context: Any) -> None:
        """Run step again while it fails for want of room or of the database, holding its row (the heartbeat
        renews the lease), unless the worker is stopped meanwhile: the runner then gives the row back."""
        failures = 0
        while True:
            try:
                return step()
            except Exception as exc:  # _held_up re-raises what a wait cannot cure
                first, most = self._held_up(exc, **context)
            if self._stop.wait(min(first * 2 ** failures, most)):
                return
            failures += 1

    def _held_up(self, exc: Exception, **context: Any) -> tuple[float, float]:
        """The first and longest waits before trying again work that exc held up (a full disk, the database
        away: each said once by its alarm); exc itself if it is any other failure."""
        if diskfull.is_disk_full(exc):
            self.app.disk.report("worker", exc, **context)
            log.debug("work_waits_for_room", **context)
            return diskfull.RETRY_SECONDS, diskfull.RETRY_MAX_SECONDS
        if dbdown.is_database_down(exc):  # the engine told the database alarm
            log.debug("work_waits_for_database", **context)
            return dbdown.RETRY_SECONDS, dbdown.RETRY_MAX_SECONDS
        raise exc

    def run(self, stop: threading.Event) -> None:
        """Work until stop is set; a flow in hand is finished first, unless it is waiting for room. A batch
        claimed ahead is left prepared (nothing is being written for it once run returns), its leases for the
        runner to give back."""
        self._stop = stop
        try:
            self._run(stop)
        finally:
            if self._preparer is not None:
                self._preparer.shutdown(wait=True)

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                worked = self.run_once()
            except Exception as exc:  # a claim, or giving a row back, found no room or no database
                stop.wait(self._held_up(exc, queue=None)[0])
                continue
            if not worked:
                self.app.wakeup.wait(self.app.settings.worker.poll_interval)
                self.app.wakeup.clear()

