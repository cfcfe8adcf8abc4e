"""Structured logging: one JSON object per line, one line per event.

Context (flow_id, invoice_id, account) is bound with structlog's contextvars where the work
starts, so every line below it carries it without passing loggers around.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor

_SECRET_KEYS = frozenset({"password", "passphrase", "private_key", "secret"})


def redact_secrets(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """Never let a credential reach a log line, whoever passed it."""
    for key in _SECRET_KEYS & event_dict.keys():
        event_dict[key] = "***"
    return event_dict


def configure_logging(level: str = "info", file: Path | None = None) -> None:
    """The gateway's events and the libraries' own warnings, as JSON lines on one stream."""
    stream: TextIO = sys.stderr
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        # a name that was not UTF-8 reaches the logs as surrogate escapes: written as \udcff, never refused
        # open for the process's life: the logger writes to it until exit
        stream = open(file, "a", buffering=1, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    tracebacks = structlog.processors.ExceptionRenderer(
        structlog.tracebacks.ExceptionDictTransformer(show_locals=False))  # locals may hold credentials
    render: list[Processor] = [tracebacks, structlog.processors.JSONRenderer(ensure_ascii=False)]
    structlog.configure(
        processors=shared + render,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(stream, shared, render)


def _route_stdlib_logging(stream: TextIO, shared: list[Processor], render: list[Processor]) -> None:
    """Libraries (watchdog, paramiko...) log through the standard library: render their warnings as JSON too."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared], processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("watchdog.observers.inotify").addFilter(_inotify_stop_race)


def _inotify_stop_race(record: logging.LogRecord) -> bool:
    """Drop the error watchdog logs when an event arrives while its observer is stopping: nothing is lost
    (the zone scan is the truth), yet an operator would read it as a failure at every stop."""
    return not record.getMessage().startswith("InotifyEmitter.queue_events() called when the thread is inactive")


log = structlog.get_logger("gateway")
