"""An API deposit: the request body streamed to a spool file, never held whole in memory, then handed to
intake like a file from any other channel (channel `api`).

The body is the file itself (its name in ?name=), or a multipart/form-data form whose `file` part carries
it (its name from the part's filename, unless ?name= gives one), as a browser sends it; the form's other
fields (short text: the console's CSRF token) are handed to a check before the flow is taken. Its name follows
the one rule of every channel (gateway.ingest.names). Past [web] max_deposit_bytes (or [ingest] max_flow_bytes, if
smaller) the deposit is refused with 413 while it is read (at once if Content-Length says so). The file is
written under a locked dot-name in the spool, which recovery removes if the process dies before intake took it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from gateway.app import App
from gateway.data.db import session_scope
from gateway.data.models import Flow, IdempotencyKey, as_utc, utcnow
from gateway.engine import locks
from gateway.ingest.intake import Arrival, intake
from gateway.ingest.names import flow_name_refusal, told
from gateway.ops.diskfull import DiskFull
from gateway.web.problems import Problem

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

CHANNEL = "api"
_KEY_MAX = 200
_FIELDS_MAX, _FIELD_BYTES = 20, 4096  # a form's fields besides its file: how many, how long each


@dataclass
class _Sink:
    """Where the file's bytes go: the spool file, counted and hashed as they come."""

    fd: int
    limit: tuple[int, str]
    size: int = 0
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit[0]:
            raise _too_large(self.limit)
        self.digest.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]


def _limit(app: App) -> tuple[int, str]:
    """The largest deposit and the setting that sets it: [web] max_deposit_bytes, or [ingest] max_flow_bytes if
    smaller."""
    return min((app.settings.web.max_deposit_bytes, "[web] max_deposit_bytes"),
               (app.settings.ingest.max_flow_bytes, "[ingest] max_flow_bytes"))


def _too_large(limit: tuple[int, str]) -> Problem:
    return Problem(413, "flow-too-large", "Flow too large",
                   f"A flow deposited over HTTP may not exceed {limit[0]} bytes ({limit[1]}).", limit=limit[0],
                   setting=limit[1])


def check_name(name: str | None) -> str:
    """The file's name, refused as every channel refuses it (gateway.ingest.names), the rule named."""
    if not name:
        raise Problem(400, "file-name-missing", "File name missing",
                      "Give the file's name as ?name=, or send a multipart form whose 'file' part has a filename.")
    refusal = flow_name_refusal(name)
    if refusal is not None:
        raise Problem(400, "file-name-invalid", "File name refused", told(refusal), rule=refusal.rule)
    return name


def check_key(key: str | None) -> str | None:
    if key is not None and not (0 < len(key) <= _KEY_MAX and key.isprintable()):
        raise Problem(400, "idempotency-key-invalid", "Idempotency-Key refused",
                      f"An Idempotency-Key is 1 to {_KEY_MAX} printable characters.")
    return key


async def receive(request: Request, app: App, account: str, name: str | None, key: str | None,
                  check: Callable[[Mapping[str, str]], None] | None = None) -> tuple[Flow, bool]:
    """Take the request's file for account; returns its flow and whether it is the first flow of a retried
    deposit (same Idempotency-Key). check is given the form's other fields (none for a bare body) once
    the body is read, before the flow is taken: raising refuses it."""
    limit = _limit(app)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit[0]:
        raise _too_large(limit)
    content_type = request.headers.get("content-type", "")
    multipart = content_type.startswith("multipart/form-data")
    if not multipart:
        check_name(name)
    key = check_key(key)
    path = app.settings.spool_dir / f".api-{secrets.token_hex(8)}.tmp"
    with locks.scratch(path) as fd:
        sink = _Sink(fd, limit)
        fields: dict[str, str] = {}
        if multipart:
            name, fields = await _read_form(request.stream(), content_type, sink, name)
        else:
            async for chunk in request.stream():
                sink.write(chunk)
        if check is not None:
            check(fields)
        arrival = Arrival(account, check_name(name), CHANNEL, key)  # a form's name is known once it is read
        return await run_in_threadpool(_take, app, path, arrival, sink.digest.hexdigest())


def _take(app: App, path, arrival: Arrival, digest: str) -> tuple[Flow, bool]:
    if arrival.idempotency_key is not None:
        first = _first(app, arrival)
        if first is not None:
            return _replay(first, digest), True
    started = utcnow()
    try:
        flow = intake(app, path, arrival)
        assert flow is not None, "a deposit's spool file has no other taker"
    except DiskFull as exc:
        raise Problem(507, "no-room", "No room to take the flow",
                      "The gateway's disk is full: the flow was not taken. Send it again later.") from exc
    replayed = as_utc(flow.received_at) < started
    return (_replay(flow, digest) if replayed else flow), replayed


def _first(app: App, arrival: Arrival) -> Flow | None:
    with session_scope(app.engine, write=False) as session:
        row = session.get(IdempotencyKey, (arrival.account, arrival.idempotency_key))
        return session.get(Flow, row.flow_id) if row else None


def _replay(flow: Flow, digest: str) -> Flow:
    if flow.sha256 != digest:
        raise Problem(422, "idempotency-key-reused", "Idempotency-Key already used",
                      f"This Idempotency-Key was used for flow {flow.id}, with other content.", flow_id=flow.id)
    return flow


async def _read_form(stream: AsyncIterator[bytes], content_type: str, sink: _Sink,
                     name: str | None) -> tuple[str | None, dict[str, str]]:
    """Stream the form's `file` part into sink; returns its filename unless name was given, and the other
    fields."""
    _kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise Problem(400, "form-invalid", "Form refused", "multipart/form-data without a boundary.")
    form = _Form(sink)
    parser = MultipartParser(boundary, form.callbacks())
    try:
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
    except Problem:
        raise
    except Exception as exc:  # the parser's errors have no common class: any of them is a malformed form
        raise Problem(400, "form-invalid", "Form refused", f"The multipart form cannot be read: {exc}") from exc
    if not form.found:
        raise Problem(400, "form-invalid", "Form refused", "The form has no 'file' part.")
    return name or form.filename, form.fields


class _Form:
    """The callbacks of python-multipart's streaming parser: the `file` part's bytes go to the sink, the other
    parts are kept as short text fields."""

    def __init__(self, sink: _Sink) -> None:
        self.sink = sink
        self.found = False
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self._header: bytes = b""
        self._headers: dict[bytes, bytes] = {}
        self._value: bytes = b""
        self._in_file = False
        self._named: str | None = None
        self._text = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {"on_part_begin": self._begin, "on_header_field": self._field, "on_header_value": self._value_part,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_done,
                "on_part_data": self._data, "on_part_end": self._end}

    def _begin(self) -> None:
        self._headers, self._in_file, self._named = {}, False, None

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header += data[start:end]

    def _value_part(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._header.lower()] = self._value
        self._header = self._value = b""

    def _headers_done(self) -> None:
        _disposition, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        field = params.get(b"name", b"")
        if field == b"file" and not self.found:
            self._in_file = self.found = True
            filename = params.get(b"filename")
            self.filename = filename.decode("utf-8", "replace") if filename else None
        elif field != b"file":
            if len(self.fields) >= _FIELDS_MAX:
                raise Problem(400, "form-invalid", "Form refused", f"More than {_FIELDS_MAX} fields in the form.")
            self._named, self._text = field.decode("utf-8", "replace"), bytearray()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.sink.write(data[start:end])
        elif self._named is not None:
            self._text += data[start:end]
            if len(self._text) > _FIELD_BYTES:
                raise Problem(400, "form-invalid", "Form refused", f"A form field is longer than {_FIELD_BYTES} bytes.")

    def _end(self) -> None:
        if self._named is not None:
            self.fields[self._named] = self._text.decode("utf-8", "replace")
        self._in_file, self._named = False, None
