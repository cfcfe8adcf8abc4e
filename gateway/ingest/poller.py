"""The pull thread: polls every pull endpoint on its own schedule (gateway.ingest.pull does one poll).

Several processes may run this thread over one database: each poll is made under the endpoint's lease
(endpoints.claim_pull), so one process at a time polls an endpoint, and its next turn, kept with the
lease, is the same for all of them. Endpoints are read from the database at each turn, so one set or
removed with `gateway accounts remote` while the gateway runs is polled, or no longer, within a second.
A poll that fails is logged and tried again at the endpoint's next turn; the others go on meanwhile.
What a poll saw is kept with the endpoint, so the next poll compares with it, whichever process makes it.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

from gateway.app import App
from gateway.data.models import Endpoint, utcnow
from gateway.engine import queue
from gateway.ingest import pull
from gateway.ops.dbdown import log_failure
from gateway.ops.log import log
from gateway.remote import RemoteError
from gateway.remote.endpoints import claim_pull, location, release_pull, save_listing

_RELOAD = 1.0  # seconds between two readings of the endpoints


class Poller:
    def __init__(self, app: App, owner: str | None = None) -> None:
        self.app = app
        self.owner = owner or queue.new_owner()  # the gateway's, whose heartbeat renews the leases

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll_due(utcnow())
            except Exception:  # claiming or releasing an endpoint: tried again at the next turn
                log_failure("pull_poll_failed")
            stop.wait(_RELOAD)

    def poll_due(self, now: datetime) -> None:
        """Poll, one at a time, each endpoint whose turn has come by now and that no process is polling;
        each is due again an interval after now, whoever polls it then."""
        while (endpoint := claim_pull(self.app.engine, self.owner, self.app.settings.worker.lease_seconds,
                                      now)) is not None:
            try:
                self.poll(endpoint)
            finally:
                interval = endpoint.interval or self.app.settings.remote.pull_interval
                release_pull(self.app.engine, endpoint, self.owner, now + timedelta(seconds=interval))

    def poll(self, endpoint: Endpoint) -> None:
        """One poll of endpoint; whatever fails is logged, never raised."""
        previous = {name: tuple(seen) for name, seen in json.loads(endpoint.listing).items()}
        try:
            endpoint.listing = json.dumps(pull.poll(self.app, endpoint, previous))
            save_listing(self.app.engine, endpoint)
        except RemoteError as exc:
            log.warning("pull_failed", account=endpoint.account, error=str(exc))
        except Exception:  # a poll never stops the poller: logged with its traceback, tried at the next turn
            log_failure("pull_failed", account=endpoint.account, remote=location(endpoint))
