"""The console's invoice pages: the dashboard (counts by status for a period, what asks for action first),
the search with its CSV export, an invoice (data, status history, files) and a recipient's answer to it.

What is shown comes from gateway.data.views, a status is set by gateway.lifecycle.service.change_status, and
which statuses a recipient may choose from gateway.lifecycle.statuses: this module reads forms and renders.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from gateway.access.sessions import Login
from gateway.app import App
from gateway.data import views
from gateway.data.models import Verdict
from gateway.lifecycle.service import StatusRefused, change_status
from gateway.lifecycle.statuses import REASON_REQUIRED, RECIPIENT_REASONS, Status, answers
from gateway.web.console.auth import Posted, Who
from gateway.web.console.errors import Missing, view
from gateway.web.console.render import download, page

router = APIRouter(prefix="/console", include_in_schema=False)

REJECTED = "rejected"  # the search's status for invoices rejected at integration (they have none)
_FIRST = (None, *(status.value for status in views.ALERTING))  # the counts shown first: those asking for action
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CSV_BATCH = 1000
CSV_COLUMNS = ("id", "number", "issue_date", "supplier", "seller_siret", "buyer_siret", "buyer_name", "recipient",
               "service_code", "engagement", "total", "currency", "status", "status_name", "verdict", "flow_id")


@dataclass
class Search:
    """A search as typed (to fill the form again) and as gateway.data.views takes it, with what was ignored."""

    typed: dict[str, str]
    criteria: dict = field(default_factory=dict)
    sort: str = "received"
    descending: bool = True
    page: int = 1
    ignored: list[tuple[str, str]] = field(default_factory=list)


def _search(request: Request) -> Search:
    params = request.query_params
    typed = {key: params.get(key, "").strip() for key in ("number", "status", "counterparty", "issued_from",
                                                          "issued_to", "amount_min", "amount_max")}
    search = Search(typed)
    for key in ("number", "counterparty"):
        if typed[key]:
            search.criteria[key] = typed[key]
    if typed["status"] == REJECTED:
        search.criteria["verdict"] = Verdict.REJECTED
    elif typed["status"]:
        try:
            search.criteria["status"] = Status.parse(typed["status"])
        except (KeyError, ValueError):
            search.ignored.append(("search.status", typed["status"]))
    for key in ("issued_from", "issued_to"):
        if typed[key]:
            if is_date(typed[key]):
                search.criteria[key] = typed[key]
            else:
                search.ignored.append((f"period.{'from' if key == 'issued_from' else 'to'}", typed[key]))
    for key in ("amount_min", "amount_max"):
        if typed[key]:
            try:
                amount = Decimal(typed[key].replace(",", ".").replace(" ", "").replace("\u202f", ""))
            except InvalidOperation:
                amount = None
            if amount is not None and amount.is_finite():
                search.criteria[key] = amount
            else:
                search.ignored.append((f"search.{key}", typed[key]))
    sort = params.get("sort")
    search.sort = sort if sort is not None and sort in views.SORTS else "received"
    search.descending = params.get("order") != "asc"
    number = params.get("page", "1")
    search.page = min(int(number), 100_000) if number.isdigit() and int(number) > 0 else 1
    return search


def is_date(text: str) -> bool:
    try:
        return bool(_DATE.fullmatch(text)) and bool(date.fromisoformat(text))
    except ValueError:
        return False


@router.get("/")
async def dashboard(request: Request, login: Who) -> Response:
    app, search = _app(request), _search(request)
    period = {key: value for key, value in search.criteria.items() if key in ("issued_from", "issued_to")}
    counts = await view(views.status_counts, app, login.viewer, **period)
    counts.sort(key=lambda c: (c["status"] not in _FIRST, _FIRST.index(c["status"]) if c["status"] in _FIRST
                               else 0, c["status"] or ""))
    alerts = await view(views.alerts, app, login.viewer, **period)
    return page(request, "dashboard.html", login, search=search, counts=counts, alerts=alerts,
                total=sum(c["count"] for c in counts), rejected=REJECTED)


@router.get("/invoices")
async def search_page(request: Request, login: Who) -> Response:
    app, search = _app(request), _search(request)
    size = app.settings.web.page_size
    found = await view(views.invoices, app, login.viewer, sort=search.sort, descending=search.descending,
                       offset=(search.page - 1) * size, limit=size, **search.criteria)
    return page(request, "invoices.html", login, search=search, found=found, statuses=list(Status),
                sorts=list(views.SORTS), rejected=REJECTED)


@router.get("/invoices.csv")
async def export(request: Request, login: Who) -> Response:
    """Every invoice the search finds, in its order, as CSV (UTF-8 with a byte order mark, for spreadsheets)."""
    return StreamingResponse(_csv(_app(request), login, _search(request)), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="invoices.csv"'})


def _csv(app: App, login: Login, search: Search) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + _drain(buffer)
    offset = 0
    while True:
        found = views.invoices(app, login.viewer, sort=search.sort, descending=search.descending, offset=offset,
                               limit=_CSV_BATCH, **search.criteria)
        writer.writerows([_cell(item[column]) for column in CSV_COLUMNS] for item in found.items)
        yield _drain(buffer)
        if found.next is None:
            return
        offset += _CSV_BATCH


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _cell(value) -> str:
    """A CSV cell a spreadsheet shows as text: never a formula (a value beginning =, +, - or @ is quoted)."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


@router.get("/invoices/{invoice_id}")
async def invoice_page(request: Request, login: Who, invoice_id: str) -> Response:
    return await _invoice(request, login, invoice_id)


async def _invoice(request: Request, login: Login, invoice_id: str, status_code: int = 200,
                   error: tuple[str, dict] | None = None) -> Response:
    app = _app(request)
    found = await view(views.invoice, app, login.viewer, invoice_id)
    answering = found["status"] is not None and (
        login.operator is not None or (found["recipient"] == login.account and found["verdict"] == "accepted"))
    choices = answers(Status(found["status"]), recycling=app.settings.lifecycle.recycling) if answering else []
    return page(request, "invoice.html", login, status_code, invoice=found, choices=choices, error=error,
                reasons=RECIPIENT_REASONS, needing=[s for s in choices if s in REASON_REQUIRED],
                sees_flow=login.operator is not None or found["supplier"] == login.account,
                status_files=[d for d in found["deliveries"] if d["kind"] == "status"])


@router.get("/invoices/{invoice_id}/document")
async def document(request: Request, login: Who, invoice_id: str) -> Response:
    return download(*await view(views.document, _app(request), login.viewer, invoice_id))


@router.get("/invoices/{invoice_id}/files/{delivery_id}")
async def delivered(request: Request, login: Who, invoice_id: str, delivery_id: str) -> Response:
    if not delivery_id.isdigit():
        raise Missing()
    return download(*await view(views.delivered_file, _app(request), login.viewer, invoice_id, int(delivery_id)))


@router.post("/invoices/{invoice_id}/status")
async def answer(request: Request, login: Who, form: Posted, invoice_id: str) -> Response:
    """The recipient (or an operator) sets the invoice's status; a refusal is shown on the invoice's page."""
    text = {key: value.strip() if isinstance(value := form.get(key), str) and value.strip() else None
            for key in ("status", "reason_code", "comment", "mandate")}
    try:
        target = Status.parse(text["status"] or "")
    except (KeyError, ValueError):
        return await _invoice(request, login, invoice_id, 422, ("answer.unknown", {"value": text["status"] or ""}))
    try:
        await view(change_status, _app(request), invoice_id, target, login.name, recipient=login.account,
                   reason_code=text["reason_code"], reason=text["comment"], mandate_number=text["mandate"],
                   source="console")
    except StatusRefused as refused:
        return await _invoice(request, login, invoice_id, 409, ("answer.refused", {"detail": str(refused)}))
    return RedirectResponse(f"/console/invoices/{quote(invoice_id)}", 303)


def _app(request: Request) -> App:
    return request.app.state.gateway
