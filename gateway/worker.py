"""Workers: claim a flow, run the state machine on it, repeat.

All workers of a process share one lease owner id; the process's heartbeat renews the leases
they hold, so a flow is taken over by others only when the whole process has died.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from gateway import pipeline, queue
from gateway.route import delivery
from gateway.app import App
from gateway.log import log
from gateway.models import Delivery, Flow


class Worker:
    def __init__(self, app: App, owner: str) -> None:
        self.app = app
        self.owner = owner

    def run_once(self) -> bool:
        """Process one flow, or else make one due delivery; returns whether there was work."""
        return self._once(Flow, self._process) or self._once(Delivery, self._deliver)

    def _process(self, flow_id: str, attempts: int) -> None:
        pipeline.process(self.app, flow_id, attempts, self.owner)

    def _deliver(self, delivery_id: int, _attempts: int) -> None:
        delivery.attempt(self.app, delivery_id)

    def _once(self, model: queue.Queued, work: Callable[[Any, int], None]) -> bool:
        """Claim one row of model and work on it; a failure gives it back for later, the worker goes on."""
        claimed = queue.claim(self.app.engine, self.owner, self.app.settings.worker.lease_seconds, model)
        if claimed is None:
            return False
        row_id, attempts = claimed
        try:
            work(row_id, attempts)
        except Exception:
            log.exception("work_failed", queue=model.__tablename__, id=row_id, attempt=attempts)
            queue.release(self.app.engine, row_id, self.owner, delay=min(60.0, 2.0 ** attempts), model=model)
        return True

    def run(self, stop: threading.Event) -> None:
        """Work until stop is set; a flow in hand is always finished first."""
        while not stop.is_set():
            if not self.run_once():
                self.app.wakeup.wait(self.app.settings.worker.poll_interval)
                self.app.wakeup.clear()

    def drain(self) -> int:
        """Process flows until none is waiting (the --once mode); returns how many."""
        count = 0
        while self.run_once():
            count += 1
        return count
