"""Settings: config.toml parsed with tomllib into typed, validated settings.

Relative paths in the file are relative to the file itself, so the gateway behaves the same
whatever directory it is started from.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

ENV_VAR = "GATEWAY_CONFIG"
DEFAULT_FILE = "config.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GatewaySettings(_Section):
    data_dir: Path = Path("var")
    zones_dir: Path = Path("var/zones")
    database_url: str = "sqlite:///var/gateway.db"
    timezone: str = "Europe/Paris"
    platform_siren: str = "100000009"
    platform_matricule: str = Field("9999", pattern=r"^[0-9A-Za-z]{1,35}$")


class IngestSettings(_Section):
    scan_interval: float = Field(2.0, gt=0)
    stable_interval: float = Field(0.2, gt=0)
    empty_grace: float = Field(5.0, gt=0)
    max_flow_bytes: int = Field(1 << 30, gt=0)  # the reform's: a flow at most 1 GB, each file in it 100 MB
    max_file_bytes: int = Field(100 * 1024 * 1024, gt=0)
    batch_max_members: int = Field(500, gt=0)
    batch_max_expanded_bytes: int = Field(1 << 30, gt=0)
    batch_max_ratio: float = Field(200.0, gt=1)
    watch_events: bool = True
    recover_interval: float = Field(10.0, gt=0)


class WorkerSettings(_Section):
    threads: int = Field(1, ge=1)
    batch: int = Field(16, ge=1)
    poll_interval: float = Field(0.5, gt=0)
    lease_seconds: float = Field(30.0, gt=0)
    max_attempts: int = Field(5, ge=1)
    stop_grace: float = Field(30.0, gt=0)


class SftpSettings(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(2222, ge=0, le=65535)
    login_grace: float = Field(30.0, gt=0)
    idle_timeout: float = Field(600.0, gt=0)
    max_connections: int = Field(64, ge=1)
    max_connections_per_ip: int = Field(8, ge=1)
    max_startups: str = Field("10:30:100", pattern=r"^\d+:\d+:\d+$")  # start:rate:full, as OpenSSH's MaxStartups
    max_startups_per_ip: int = Field(10, ge=1)
    penalty_seconds: float = Field(30.0, ge=0)
    penalty_max: float = Field(600.0, ge=0)
    auth_delay: float = Field(1.0, ge=0)
    auth_delay_max: float = Field(16.0, ge=0)
    ban_after: int = Field(10, ge=1)
    ban_accounts: int = Field(5, ge=2)
    ban_seconds: float = Field(900.0, gt=0)
    max_files_per_session: int = Field(10000, ge=1)
    max_open_handles: int = Field(32, ge=1)
    max_open_handles_per_account: int = Field(128, ge=1)
    inbox_max_bytes: int = Field(1 << 30, gt=0)
    inbox_max_files: int = Field(10000, ge=1)
    stale_upload_seconds: float = Field(86400.0, gt=0)

    @property
    def startups(self) -> tuple[int, int, int]:
        """max_startups as (start, rate in %, full)."""
        start, rate, full = (int(part) for part in self.max_startups.split(":"))
        return start, rate, full

    @model_validator(mode="after")
    def _startups_make_sense(self) -> SftpSettings:
        start, rate, full = self.startups
        if not (1 <= start <= full and rate <= 100):
            raise ValueError("max_startups is start:rate:full with 1 <= start <= full and rate <= 100")
        return self


class ValidateSettings(_Section):
    processes: int = Field(0, ge=0)  # 0: one per worker thread in `gateway run`, one per core elsewhere
    time_budget: float = Field(30.0, gt=0)
    max_bytes: int = Field(20 * 1024 * 1024, gt=0)
    max_elements: int = Field(20000, gt=0)
    max_attributes: int = Field(20000, gt=0)
    profile: str = "auto"
    packs_dir: Path | None = None  # None: gateway.validate.rules.packs_dir()

    @property
    def pool_size(self) -> int:
        return self.processes or os.cpu_count() or 1


class DeliverySettings(_Section):
    threads: int = Field(1, ge=1)
    max_attempts: int = Field(8, ge=1)
    retry_base: float = Field(30.0, gt=0)
    retry_max: float = Field(3600.0, gt=0)


class RemoteSettings(_Section):
    timeout: float = Field(15.0, gt=0)
    push_attempts: int = Field(3, ge=1)
    push_wait: float = Field(0.5, gt=0)
    push_wait_max: float = Field(5.0, gt=0)
    pull_interval: float = Field(60.0, gt=0)


class WebSettings(_Section):
    listen: str = Field("127.0.0.1:8080", pattern=r"^\[?[^\s\]]*\]?:\d{1,5}$")
    certfile: Path | None = None
    keyfile: Path | None = None
    page_size: int = Field(50, ge=1, le=1000)
    min_free_bytes: int = Field(100 * 1024 * 1024, ge=0)
    max_deposit_bytes: int = Field(30 * 1024 * 1024, gt=0)  # the reform's for the API channel: 30 MB
    auth_delay: float = Field(1.0, ge=0)
    auth_delay_max: float = Field(16.0, ge=0)
    ban_after: int = Field(10, ge=1)
    ban_accounts: int = Field(5, ge=2)
    ban_seconds: float = Field(900.0, gt=0)
    session_idle: float = Field(1800.0, gt=0)  # seconds a console session lives unused

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class NotifySettings(_Section):
    allow_private: bool = False
    timeout: float = Field(10.0, gt=0)


class SmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=0, le=65535)
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    sender: str = "gateway@localhost"
    timeout: float = Field(15.0, gt=0)


class LifecycleSettings(_Section):
    recycling: bool = False  # the historic A_RECYCLER; withdrawn by the reform (a request becomes REJETEE)


class LogSettings(_Section):
    level: str = "info"
    file: Path | None = None
    summary_interval: float = Field(60.0, gt=0)  # seconds: repeated events counted, then summed up (gateway.alarm)


class Settings(_Section):
    gateway: GatewaySettings = GatewaySettings()
    ingest: IngestSettings = IngestSettings()
    worker: WorkerSettings = WorkerSettings()
    sftp: SftpSettings = SftpSettings()
    validation: ValidateSettings = Field(ValidateSettings(), alias="validate")  # `validate` is BaseModel's
    delivery: DeliverySettings = DeliverySettings()
    remote: RemoteSettings = RemoteSettings()
    web: WebSettings = WebSettings()
    notify: NotifySettings = NotifySettings()
    smtp: SmtpSettings = SmtpSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    log: LogSettings = LogSettings()

    @property
    def store_dir(self) -> Path:
        return self.gateway.data_dir / "store"

    @property
    def spool_dir(self) -> Path:
        return self.gateway.data_dir / "spool"

    @property
    def sftp_host_key(self) -> Path:
        return self.gateway.data_dir / "sftp_host_ed25519_key"


def _anchor(settings: Settings, base: Path) -> Settings:
    """Make every relative path (and a relative SQLite file) relative to base."""
    g = settings.gateway
    g.data_dir = base / g.data_dir
    g.zones_dir = base / g.zones_dir
    prefix = "sqlite:///"
    if g.database_url.startswith(prefix) and not g.database_url.startswith(prefix + "/"):
        rest = g.database_url[len(prefix):]
        if rest and not rest.startswith(":memory:"):
            g.database_url = prefix + str(base / rest)
    if settings.validation.packs_dir is not None:
        settings.validation.packs_dir = base / settings.validation.packs_dir
    for name in ("certfile", "keyfile"):
        if getattr(settings.web, name) is not None:
            setattr(settings.web, name, base / getattr(settings.web, name))
    if settings.log.file is not None:
        settings.log.file = base / settings.log.file
    return settings


def defaults(base: Path) -> Settings:
    """The settings without a configuration file, relative paths taken from base."""
    return _anchor(Settings(), base)


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """--config, else $GATEWAY_CONFIG, else ./config.toml."""
    return Path(explicit or os.environ.get(ENV_VAR) or DEFAULT_FILE)


def load(path: str | os.PathLike | None = None) -> Settings:
    file = config_path(path).resolve()
    with open(file, "rb") as fh:
        raw = tomllib.load(fh)
    return _anchor(Settings.model_validate(raw), file.parent)
