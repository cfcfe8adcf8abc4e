"""Workers: claim a flow (or a due delivery), work on it, repeat.

A worker serves the queues it is given: flows (the `worker` role of `gateway run`), deliveries (the
`deliver` role), or both in turn. All workers of a process share one lease owner id; the process's
heartbeat renews the leases they hold, so a row is taken over by others only when the whole process
has died. A full disk is no failure of the work in hand: the worker keeps it, and tries it again until
there is room.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

from gateway import pipeline, queue
from gateway.route import delivery
from gateway.app import App
from gateway.diskfull import RETRY_MAX_SECONDS, RETRY_SECONDS, is_disk_full
from gateway.log import log
from gateway.models import Delivery, Flow


class Worker:
    def __init__(self, app: App, owner: str, queues: Sequence[queue.Queued] = (Flow, Delivery)) -> None:
        self.app = app
        self.owner = owner
        self._stop = threading.Event()  # run()'s, so that a wait for room ends with the gateway
        work = {Flow: self._process, Delivery: self._deliver}
        self._queues = [(model, work[model]) for model in queues]

    def run_once(self) -> bool:
        """Take one row from the first of its queues that has one ready; returns whether there was work."""
        return any(self._once(model, work) for model, work in self._queues)

    def _process(self, flow_id: str, attempts: int) -> None:
        pipeline.process(self.app, flow_id, attempts, self.owner)
        self.app.disk.clear()  # its report was written

    def _deliver(self, delivery_id: int, _attempts: int) -> None:
        delivery.attempt(self.app, delivery_id)

    def _once(self, model: queue.Queued, work: Callable[[Any, int], None]) -> bool:
        """Claim one row of model and work on it; a failure gives it back for later, the worker goes on."""
        claimed = queue.claim(self.app.engine, self.owner, self.app.settings.worker.lease_seconds, model)
        if claimed is None:
            return False
        row_id, attempts = claimed
        try:
            self._until_room(lambda: work(row_id, attempts), queue=model.__tablename__, id=row_id)
        except Exception:
            log.exception("work_failed", queue=model.__tablename__, id=row_id, attempt=attempts)
            queue.release(self.app.engine, row_id, self.owner, delay=min(60.0, 2.0 ** attempts), model=model)
        return True

    def _until_room(self, step: Callable[[], None], **context: Any) -> None:
        """Run step again while it fails for want of room, holding its row (the heartbeat renews the lease),
        unless the worker is stopped meanwhile: the runner then gives the row back."""
        delay = RETRY_SECONDS
        while True:
            try:
                return step()
            except Exception as exc:
                if not is_disk_full(exc):
                    raise
                self.app.disk.full("worker", exc, **context)
                log.debug("work_waits_for_room", seconds=delay, **context)
            if self._stop.wait(delay):
                return
            delay = min(2 * delay, RETRY_MAX_SECONDS)

    def run(self, stop: threading.Event) -> None:
        """Work until stop is set; a flow in hand is finished first, unless it is waiting for room."""
        self._stop = stop
        while not stop.is_set():
            try:
                worked = self.run_once()
            except Exception as exc:  # a claim, or giving a row back, found no room in the database
                if not is_disk_full(exc):
                    raise
                self.app.disk.full("worker", exc)
                log.debug("work_waits_for_room", queue=None)
                stop.wait(RETRY_SECONDS)
                continue
            if not worked:
                self.app.wakeup.wait(self.app.settings.worker.poll_interval)
                self.app.wakeup.clear()

    def drain(self) -> int:
        """Process flows until none is waiting (the --once mode); returns how many."""
        count = 0
        while self.run_once():
            count += 1
        return count
