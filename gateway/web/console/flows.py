"""The console's flow pages: the list, one flow (state, invoices with their verdicts and every error, its
acknowledgement and report; refreshing until the report exists) and the deposit of a file from the browser,
which goes through gateway.web.deposit.receive like an API deposit, then shows the new flow."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from gateway import views
from gateway.web.console.auth import Who, check_csrf
from gateway.web.console.errors import Missing, view
from gateway.web.console.render import download, page
from gateway.web.deposit import receive
from gateway.web.problems import Problem

router = APIRouter(prefix="/console", include_in_schema=False)

REFRESH_SECONDS = 2


@router.get("/flows")
async def flows_page(request: Request, login: Who, after: str | None = None) -> Response:
    app = request.app.state.gateway
    found = await view(views.flows, app, login.viewer, after=after or None, limit=app.settings.web.page_size)
    return page(request, "flows.html", login, found=found)


@router.get("/flows/{flow_id}")
async def flow_page(request: Request, login: Who, flow_id: str) -> Response:
    found = await view(views.flow, request.app.state.gateway, login.viewer, flow_id)
    return page(request, "flow.html", login, flow=found, refresh=None if found["reported"] else REFRESH_SECONDS)


@router.get("/flows/{flow_id}/{which}")
async def returned(request: Request, login: Who, flow_id: str, which: str) -> Response:
    """The flow's acknowledgement (ack) or report, as its supplier received them."""
    if which not in ("ack", "report"):
        raise Missing()
    return download(*await view(views.returned_file, request.app.state.gateway, login.viewer, flow_id, which))


@router.get("/deposit")
async def deposit_form(request: Request, login: Who) -> Response:
    return page(request, "deposit.html", login, 200 if login.account else 403, error=None)


@router.post("/deposit")
async def deposit(request: Request, login: Who) -> Response:
    """The form's file, streamed to intake (its CSRF token checked before the flow is taken)."""
    if login.account is None:
        return page(request, "deposit.html", login, 403, error=None)
    try:
        flow, _replayed = await receive(request, request.app.state.gateway, login.account, None, None,
                                        check=lambda fields: check_csrf(login, fields.get("csrf")))
    except Problem as problem:
        return page(request, "deposit.html", login, problem.status, error=problem.detail or problem.title)
    return RedirectResponse(f"/console/flows/{quote(flow.id)}", 303)
