"""Settings: config.toml parsed with tomllib into typed, validated settings.

Relative paths in the file are relative to the file itself, so the gateway behaves the same
whatever directory it is started from.
"""

from __future__ import annotations

import operator
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import UnionType
from typing import Any, get_args, get_origin, get_type_hints

ENV_VAR = "GATEWAY_CONFIG"
DEFAULT_FILE = "config.toml"


class ConfigError(ValueError):
    """A setting the gateway cannot run with; the message names it, says what it must be and what was given."""


def _setting(default: Any, **checks: Any) -> Any:
    """A setting's default, and the checks its value must pass: gt, ge, le (bounds), pattern (a regex)."""
    return field(default_factory=lambda: default, metadata=checks)


_CHECKS = {"gt": (operator.gt, "greater than"), "ge": (operator.ge, "at least"), "le": (operator.le, "at most")}


_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", Path: "a path"}


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """value as a setting of type kind (TOML's own types; a path from a string, a float from an integer)."""
    kinds = get_args(kind) if get_origin(kind) is UnionType else (kind,)
    if value is None and type(None) in kinds:
        return None
    for k in kinds:
        if k is float and type(value) in (int, float):
            return float(value)
        if k is Path and isinstance(value, (str, Path)):
            return Path(value)
        if k is not type(None) and type(value) is k:
            return value
    expected = " or ".join(_KIND_NAMES[k] for k in kinds if k is not type(None))
    raise ConfigError(f"{where} must be {expected}, not {value!r}")


@dataclass
class _Section:
    """A section of config.toml: its settings typed and checked when made (unknown names are refused)."""

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for item in fields(self):
            where = f"[{_section_name(type(self))}] {item.name}"
            value = _coerce(getattr(self, item.name), hints[item.name], where)
            for check, bound in item.metadata.items():
                if check == "pattern":
                    if not re.fullmatch(bound, value):
                        raise ConfigError(f"{where} {value!r} does not have the expected form ({bound})")
                elif not _CHECKS[check][0](value, bound):
                    raise ConfigError(f"{where} must be {_CHECKS[check][1]} {bound}, not {value!r}")
            setattr(self, item.name, value)

    @classmethod
    def from_table(cls, table: dict[str, Any]) -> Any:
        names = {item.name for item in fields(cls)}
        unknown = sorted(set(table) - names)
        if unknown:
            withdrawn = _WITHDRAWN.get(_section_name(cls), {})
            gone = [name for name in unknown if name in withdrawn]
            why = f"; {', '.join(gone)} withdrawn: {'; '.join(sorted({withdrawn[n] for n in gone}))}" if gone else ""
            raise ConfigError(f"[{_section_name(cls)}] has no setting {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(names))}){why}")
        return cls(**table)


def _section_name(cls: type) -> str:
    return _SECTION_NAMES.get(cls, cls.__name__)


_PUSH_RETRY = ("a push is tried once per delivery attempt, the delivery queue retries "
               "([delivery] max_attempts, retry_base, retry_max)")
# Settings of former versions, by section, and why they went: a file still carrying one is refused, told why.
_WITHDRAWN = {"remote": {"push_attempts": _PUSH_RETRY, "push_wait": _PUSH_RETRY, "push_wait_max": _PUSH_RETRY}}


@dataclass
class GatewaySettings(_Section):
    data_dir: Path = Path("var")
    zones_dir: Path = Path("var/zones")
    database_url: str = "sqlite:///var/gateway.db"
    timezone: str = "Europe/Paris"
    platform_siren: str = "100000009"
    platform_matricule: str = _setting("9999", pattern=r"^[0-9A-Za-z]{1,35}$")


@dataclass
class IngestSettings(_Section):
    scan_interval: float = _setting(2.0, gt=0)
    stable_interval: float = _setting(0.2, gt=0)
    empty_grace: float = _setting(5.0, gt=0)
    max_flow_bytes: int = _setting(1 << 30, gt=0)  # the reform's: a flow at most 1 GB, each file in it 100 MB
    max_file_bytes: int = _setting(100 * 1024 * 1024, gt=0)
    batch_max_members: int = _setting(500, gt=0)
    batch_max_expanded_bytes: int = _setting(1 << 30, gt=0)
    batch_max_ratio: float = _setting(200.0, gt=1)
    watch_events: bool = True
    recover_interval: float = _setting(10.0, gt=0)


@dataclass
class WorkerSettings(_Section):
    threads: int = _setting(1, ge=1)
    batch: int = _setting(16, ge=1)
    poll_interval: float = _setting(0.5, gt=0)
    lease_seconds: float = _setting(30.0, gt=0)
    max_attempts: int = _setting(5, ge=1)
    stop_grace: float = _setting(30.0, gt=0)


@dataclass
class SftpSettings(_Section):
    enabled: bool = False
    own_process: bool = True  # `gateway run` serves SFTP from a child process (gateway.ingest.sftp.process)
    host: str = "127.0.0.1"
    port: int = _setting(2222, ge=0, le=65535)
    login_grace: float = _setting(30.0, gt=0)
    idle_timeout: float = _setting(600.0, gt=0)
    max_connections: int = _setting(64, ge=1)
    max_connections_per_ip: int = _setting(8, ge=1)
    max_startups: str = _setting("10:30:100", pattern=r"^\d+:\d+:\d+$")  # start:rate:full, as OpenSSH's MaxStartups
    max_startups_per_ip: int = _setting(10, ge=1)
    penalty_seconds: float = _setting(30.0, ge=0)
    penalty_max: float = _setting(600.0, ge=0)
    auth_delay: float = _setting(1.0, ge=0)
    auth_delay_max: float = _setting(16.0, ge=0)
    ban_after: int = _setting(10, ge=1)
    ban_accounts: int = _setting(5, ge=2)
    ban_seconds: float = _setting(900.0, gt=0)
    max_files_per_session: int = _setting(10000, ge=1)
    max_open_handles: int = _setting(32, ge=1)
    max_open_handles_per_account: int = _setting(128, ge=1)
    inbox_max_bytes: int = _setting(1 << 30, gt=0)
    inbox_max_files: int = _setting(10000, ge=1)
    stale_upload_seconds: float = _setting(86400.0, gt=0)

    @property
    def startups(self) -> tuple[int, int, int]:
        """max_startups as (start, rate in %, full)."""
        start, rate, full = (int(part) for part in self.max_startups.split(":"))
        return start, rate, full

    def __post_init__(self) -> None:
        super().__post_init__()
        start, rate, full = self.startups
        if not (1 <= start <= full and rate <= 100):
            raise ConfigError("[sftp] max_startups is start:rate:full with 1 <= start <= full and rate <= 100")


@dataclass
class ValidateSettings(_Section):
    processes: int = _setting(0, ge=0)  # 0: one per worker thread in `gateway run`, one per core elsewhere
    time_budget: float = _setting(30.0, gt=0)
    max_bytes: int = _setting(20 * 1024 * 1024, gt=0)
    max_elements: int = _setting(20000, gt=0)
    max_attributes: int = _setting(20000, gt=0)
    profile: str = "auto"
    packs_dir: Path | None = None  # None: gateway.validate.rules.packs_dir()

    @property
    def pool_size(self) -> int:
        return self.processes or os.cpu_count() or 1


@dataclass
class DeliverySettings(_Section):
    threads: int = _setting(1, ge=1)
    max_attempts: int = _setting(8, ge=1)
    retry_base: float = _setting(30.0, gt=0)
    retry_max: float = _setting(3600.0, gt=0)


@dataclass
class RemoteSettings(_Section):
    timeout: float = _setting(15.0, gt=0)
    pull_interval: float = _setting(60.0, gt=0)


@dataclass
class WebSettings(_Section):
    listen: str = _setting("127.0.0.1:8080", pattern=r"^\[?[^\s\]]*\]?:\d{1,5}$")
    certfile: Path | None = None
    keyfile: Path | None = None
    page_size: int = _setting(50, ge=1, le=1000)
    min_free_bytes: int = _setting(100 * 1024 * 1024, ge=0)
    max_deposit_bytes: int = _setting(30 * 1024 * 1024, gt=0)  # the reform's for the API channel: 30 MB
    auth_delay: float = _setting(1.0, ge=0)
    auth_delay_max: float = _setting(16.0, ge=0)
    ban_after: int = _setting(10, ge=1)
    ban_accounts: int = _setting(5, ge=2)
    ban_seconds: float = _setting(900.0, gt=0)
    session_idle: float = _setting(1800.0, gt=0)  # seconds a console session lives unused

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass
class NotifySettings(_Section):
    allow_private: bool = False
    timeout: float = _setting(10.0, gt=0)


@dataclass
class SmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = _setting(25, ge=0, le=65535)
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    sender: str = "gateway@localhost"
    timeout: float = _setting(15.0, gt=0)


@dataclass
class LifecycleSettings(_Section):
    recycling: bool = False  # the historic A_RECYCLER; withdrawn by the reform (a request becomes REJETEE)


@dataclass
class LogSettings(_Section):
    level: str = "info"
    file: Path | None = None
    summary_interval: float = _setting(60.0, gt=0)  # seconds: repeated events counted, then summed up (ops.alarm)


@dataclass
class Settings:
    """All of config.toml: one section each ([validate] is `validation` here)."""

    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    sftp: SftpSettings = field(default_factory=SftpSettings)
    validation: ValidateSettings = field(default_factory=ValidateSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    web: WebSettings = field(default_factory=WebSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    log: LogSettings = field(default_factory=LogSettings)

    @classmethod
    def from_toml(cls, raw: dict[str, Any]) -> Settings:
        """The settings a parsed config.toml gives; ConfigError names an unknown section or a bad setting."""
        known = {_SECTION_OF.get(item.name, item.name): item for item in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(f"no section {', '.join(f'[{n}]' for n in unknown)} in the configuration "
                              f"(known: {', '.join(sorted(known))})")
        values = {}
        for name, item in known.items():
            table = raw.get(name, {})
            if not isinstance(table, dict):
                raise ConfigError(f"{name} must be a section [{name}], not a value")
            values[item.name] = item.default_factory.from_table(table)  # type: ignore[misc, union-attr]
        return cls(**values)

    @property
    def store_dir(self) -> Path:
        return self.gateway.data_dir / "store"

    @property
    def spool_dir(self) -> Path:
        return self.gateway.data_dir / "spool"

    @property
    def sftp_host_key(self) -> Path:
        return self.gateway.data_dir / "sftp_host_ed25519_key"


# The section of config.toml each attribute of Settings reads, where they differ, and the section of each class.
_SECTION_OF = {"validation": "validate"}
_SECTION_NAMES: dict[Any, str] = {item.default_factory: _SECTION_OF.get(item.name, item.name)
                                  for item in fields(Settings)}


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
        try:
            raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    try:
        return _anchor(Settings.from_toml(raw), file.parent)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from exc
