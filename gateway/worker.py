"""Workers: claim a flow, run the state machine on it, repeat.

All workers of a process share one lease owner id; the process's heartbeat renews the leases
they hold, so a flow is taken over by others only when the whole process has died.
"""

from __future__ import annotations

import threading

from gateway import pipeline, queue
from gateway.app import App
from gateway.log import log


class Worker:
    def __init__(self, app: App, owner: str) -> None:
        self.app = app
        self.owner = owner

    def run_once(self) -> bool:
        """Process one flow if one is waiting; returns whether there was one."""
        settings = self.app.settings.worker
        claimed = queue.claim(self.app.engine, self.owner, settings.lease_seconds)
        if claimed is None:
            return False
        flow_id, attempts = claimed
        try:
            pipeline.process(self.app, flow_id, attempts)
        except Exception:
            log.exception("flow_processing_error", flow_id=flow_id, attempt=attempts)
            queue.release(self.app.engine, flow_id, self.owner, delay=min(60.0, 2.0 ** attempts))
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
