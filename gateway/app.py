"""The gateway's shared parts, built once from the settings and handed to every component."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from gateway.config import Settings
from gateway.data.db import make_engine
from gateway.data.reference import Reference
from gateway.data.store import ContentStore
from gateway.ops import dbdown, diskfull
from gateway.ops.alarm import Alarm, Repeats
from gateway.ops.permissions import PRIVATE_DIR, ZONE_DIR, make_dir
from gateway.zones import Zones

if TYPE_CHECKING:
    from gateway.remote import SftpPool
    from gateway.validate.rules import RulesStage


@dataclass
class App:
    settings: Settings
    engine: Engine
    store: ContentStore
    zones: Zones
    # Set by intake when a flow is committed, so idle workers start at once instead of polling.
    wakeup: threading.Event = field(default_factory=threading.Event)
    # The business rules' validator processes: started by the runner, which alone needs them.
    rules: RulesStage | None = None
    # What every component tells of a full disk, or of the database out of reach, logged once rather than
    # once per file and retry.
    disk: Alarm = field(default_factory=diskfull.alarm)
    database: Alarm = field(default_factory=dbdown.alarm)
    # What every component tells of events that come in floods (refused connections, failed logins...).
    repeats: Repeats = field(init=False)
    # The directory, accounts, subscriptions and endpoints as this process last read them (gateway.data.reference).
    reference: Reference = field(init=False)
    _remote: SftpPool | None = field(default=None, init=False, repr=False)
    _remote_made: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        dbdown.watch(self.engine, self.database)
        self.repeats = Repeats(self.settings.log.summary_interval)
        self.reference = Reference(self.engine, self.settings.worker.poll_interval)

    @property
    def remote(self) -> SftpPool:
        """Connections to accounts' own SFTP servers (push and pull), closed when the gateway stops; made at first
        use, so that a command never connecting does not import paramiko."""
        with self._remote_made:
            if self._remote is None:
                from gateway.remote import SftpPool  # here for start-up time: paramiko, the ORM

                self._remote = SftpPool(self.settings.remote.timeout)
        return self._remote

    def emit(self, account: str, name: str, content: bytes) -> str:
        """Keep what the gateway sends in the content store, then publish it in the account's out/; returns
        its SHA-256 (the key of the stored copy)."""
        digest = self.store.put(content)
        self.zones.publish(account, name, content)
        return digest

    @classmethod
    def from_settings(cls, settings: Settings) -> App:
        for directory in (settings.gateway.data_dir, settings.spool_dir, settings.store_dir):
            make_dir(directory, PRIVATE_DIR)
        make_dir(settings.gateway.zones_dir, ZONE_DIR)
        return cls(
            settings=settings,
            engine=make_engine(settings.gateway.database_url),
            store=ContentStore(settings.store_dir),
            zones=Zones(settings.gateway.zones_dir),
        )
