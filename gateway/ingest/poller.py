"""The pull thread: polls every pull endpoint on its own schedule (gateway.ingest.pull does one poll).

Endpoints are read from the database at each turn, so one set or removed with `gateway accounts
remote` while the gateway runs is polled, or no longer, within a second. A poll that fails is logged
and tried again at the endpoint's next turn; the others go on meanwhile. What each endpoint listed
last is kept in memory only: after a restart a file needs two polls again before it is taken.
"""

from __future__ import annotations

import threading
import time

from gateway.app import App
from gateway.ingest import pull
from gateway.log import log
from gateway.models import Endpoint
from gateway.remote import RemoteError
from gateway.remote.endpoints import location, pulls

_RELOAD = 1.0  # seconds between two readings of the endpoints

_Key = tuple[str, str]  # (account, location): a changed address starts afresh


class Poller:
    def __init__(self, app: App) -> None:
        self.app = app
        self._listings: dict[_Key, pull.Listing] = {}
        self._due: dict[_Key, float] = {}

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll_due(time.monotonic())
            stop.wait(self._pause(time.monotonic()))

    def poll_due(self, now: float) -> None:
        """Poll each endpoint whose turn has come (a new one at once); forget those removed."""
        due: dict[_Key, float] = {}
        for endpoint in pulls(self.app.engine):
            key = (endpoint.account, location(endpoint))
            due[key] = self._due.get(key, 0.0)
            if due[key] <= now:
                due[key] = now + (endpoint.interval or self.app.settings.remote.pull_interval)
                self.poll(endpoint)
        self._due = due

    def poll(self, endpoint: Endpoint) -> None:
        """One poll of endpoint; whatever fails is logged, never raised."""
        key = (endpoint.account, location(endpoint))
        try:
            self._listings[key] = pull.poll(self.app, endpoint, self._listings.get(key, {}))
        except RemoteError as exc:
            log.warning("pull_failed", account=endpoint.account, error=str(exc))
        except Exception:
            log.exception("pull_failed", account=endpoint.account, remote=location(endpoint))

    def _pause(self, now: float) -> float:
        return max(0.0, min([_RELOAD, *(due - now for due in self._due.values())]))
