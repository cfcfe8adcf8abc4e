"""The HTTP API, version 1: deposit flows, follow flows and invoices, set statuses, read the directory.

Every route takes the caller from its bearer token (gateway.web.auth) and asks gateway.data.views, intake and
the lifecycle service exactly what the CLI asks them: this module translates HTTP, nothing more. What the
caller may not see is answered 404, as if it did not exist.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from gateway.access.tokens import Holder
from gateway.data import views
from gateway.data.models import FlowState
from gateway.lifecycle.service import StatusRefused, change_status
from gateway.lifecycle.statuses import Status
from gateway.web import schemas
from gateway.web.auth import account_of, holder, viewer
from gateway.web.deposit import receive
from gateway.web.problems import Problem, not_found

router = APIRouter(prefix="/api/v1", dependencies=[Depends(holder)])
Caller = Annotated[Holder, Depends(holder)]
_XML, _PDF = "application/xml", "application/pdf"


def _gateway(request: Request):
    return request.app.state.gateway


def _cursor(value: str | None) -> str | None:
    """Cursors are opaque to clients: the last id of the previous page, base64url-encoded."""
    if value is None:
        return None
    try:
        return base64.b64decode(value.encode() + b"=" * (-len(value) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise Problem(400, "cursor-invalid", "Cursor refused", "Pass back the next_cursor of a previous page.") from exc


def _next(page: views.Page) -> str | None:
    return base64.urlsafe_b64encode(page.next.encode()).decode().rstrip("=") if page.next else None


async def _view(function, *args, **kwargs):
    """A views function, in a worker thread (it waits on the database), NotFound as a 404 problem."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except views.NotYet as exc:
        raise Problem(404, "not-yet", "Not made yet", str(exc)) from exc
    except views.NotFound as exc:
        raise not_found(str(exc)) from exc


@router.post("/flows", status_code=202, response_model=schemas.Deposit, tags=["flows"],
             summary="Deposit a flow (one invoice, a batch, or a status message)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                 "multipart/form-data": {"schema": {"type": "object", "properties": {
                     "file": {"type": "string", "format": "binary"}}, "required": ["file"]}}}}})
async def deposit(request: Request, caller: Caller, response: Response,
                  name: Annotated[str | None,
                                  Query(description="The file's name (its extension says its type)")] = None,
                  idempotency_key: Annotated[str | None, Header(description="A retry with the same key returns "
                                                                "the first flow")] = None) -> schemas.Deposit:
    """The body is the file (or a multipart form's `file` part). It goes through the same intake as SFTP:
    answered once the flow is stored safely and acknowledged; its report follows at /flows/{id}/report."""
    flow, replayed = await receive(request, _gateway(request), account_of(caller), name, idempotency_key)
    base = f"/api/v1/flows/{flow.id}"
    response.headers["Location"] = base
    if replayed:
        response.status_code = 200
    return schemas.Deposit(flow_id=flow.id, state=flow.state.value, original_name=flow.original_name,
                           size=flow.size, sha256=flow.sha256, received_at=flow.received_at, replayed=replayed,
                           acknowledgement=f"{base}/ack", links={"self": base, "ack": f"{base}/ack",
                                                                 "report": f"{base}/report"})


@router.get("/flows", response_model=schemas.FlowPage, tags=["flows"], summary="The caller's flows, newest first")
async def list_flows(request: Request, caller: Caller, state: FlowState | None = None,
                     since: datetime | None = None, until: datetime | None = None, cursor: str | None = None,
                     limit: Annotated[int | None, Query(ge=1, le=1000)] = None) -> dict:
    page = await _view(views.flows, _gateway(request), viewer(caller), state=state, since=since, until=until,
                       after=_cursor(cursor), limit=limit or _gateway(request).settings.web.page_size)
    return {"items": page.items, "next_cursor": _next(page)}


@router.get("/flows/{flow_id}", response_model=schemas.FlowDetail, tags=["flows"],
            summary="A flow: state, counts, invoices with verdicts and errors, deliveries, timeline")
async def show_flow(request: Request, caller: Caller, flow_id: str) -> dict:
    return await _view(views.flow, _gateway(request), viewer(caller), flow_id)


@router.get("/flows/{flow_id}/ack", response_class=Response, tags=["flows"],
            summary="The acknowledgement of receipt (XML)", responses={200: {"content": {_XML: {}}}})
async def flow_ack(request: Request, caller: Caller, flow_id: str) -> Response:
    return _file(*await _view(views.returned_file, _gateway(request), viewer(caller), flow_id, "ack"))


@router.get("/flows/{flow_id}/report", response_class=Response, tags=["flows"],
            summary="The integration report (XML); 404 not-yet until the flow is processed",
            responses={200: {"content": {_XML: {}}}})
async def flow_report(request: Request, caller: Caller, flow_id: str) -> Response:
    return _file(*await _view(views.returned_file, _gateway(request), viewer(caller), flow_id, "report"))


def _file(name: str, content: bytes) -> Response:
    return Response(content, media_type=_PDF if name.endswith(".pdf") else _XML,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _status(value: str | None) -> Status | None:
    if value is None:
        return None
    try:
        return Status.parse(value)
    except (KeyError, ValueError) as exc:
        raise Problem(422, "status-unknown", "Unknown status",
                      f"{value!r} is not a status: " + ", ".join(f"{s.value} {s.name}" for s in Status)) from exc


@router.get("/invoices", response_model=schemas.InvoicePage, tags=["invoices"],
            summary="Search the invoices the caller sent or received, newest first")
async def search_invoices(request: Request, caller: Caller, number: str | None = None,
                          status: Annotated[str | None, Query(description="Name or code")] = None,
                          counterparty: Annotated[str | None, Query(description="The other party's SIRET or "
                                                                    "account")] = None,
                          issued_from: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
                          issued_to: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
                          cursor: str | None = None, limit: Annotated[int | None, Query(ge=1, le=1000)] = None) -> dict:
    page = await _view(views.invoices, _gateway(request), viewer(caller), number=number, status=_status(status),
                       counterparty=counterparty, issued_from=issued_from, issued_to=issued_to,
                       after=_cursor(cursor), limit=limit or _gateway(request).settings.web.page_size)
    return {"items": page.items, "next_cursor": _next(page)}


@router.get("/invoices/{invoice_id}", response_model=schemas.InvoiceDetail, tags=["invoices"],
            summary="An invoice: data, current status, the whole status history")
async def show_invoice(request: Request, caller: Caller, invoice_id: str) -> dict:
    return await _view(views.invoice, _gateway(request), viewer(caller), invoice_id)


@router.get("/invoices/{invoice_id}/document", response_class=Response, tags=["invoices"],
            summary="The invoice as delivered", responses={200: {"content": {_XML: {}, _PDF: {}}}})
async def invoice_document(request: Request, caller: Caller, invoice_id: str) -> Response:
    return _file(*await _view(views.document, _gateway(request), viewer(caller), invoice_id))


@router.post("/invoices/{invoice_id}/status", response_model=schemas.InvoiceDetail, tags=["invoices"],
             summary="Set an invoice's status, as its recipient (the rules of a status file)")
async def set_invoice_status(request: Request, caller: Caller, invoice_id: str,
                             change: schemas.StatusChange) -> dict:
    app, target = _gateway(request), _status(change.status)
    if caller.account is not None:  # the supplier sees its invoice but does not set its statuses
        visible = await _view(views.invoice, app, viewer(caller), invoice_id)
        if visible["recipient"] != caller.account or visible["verdict"] != "accepted":
            raise Problem(403, "not-recipient", "Only the recipient sets statuses",
                          f"Invoice {invoice_id} was not delivered to {caller.account}.")
    try:
        await _view(change_status, app, invoice_id, target, caller.name, recipient=caller.account,
                    reason_code=change.reason, reason=change.comment, mandate_number=change.mandate, source="api")
    except StatusRefused as refused:
        raise Problem(409, "status-refused", "Status change refused", str(refused)) from refused
    return await _view(views.invoice, app, viewer(caller), invoice_id)


@router.get("/directory/{siret}", response_model=schemas.Structure, tags=["directory"],
            summary="A structure of the directory and its services, to check an address before sending")
async def directory(request: Request, caller: Caller, siret: str) -> dict:
    return await _view(views.structure, _gateway(request), siret, with_accounts=caller.account is None)
