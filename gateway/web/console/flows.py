"""The console's flow pages: the list (filtered by state, channel, days received and, for an operator, account),
one flow (state, invoices with their verdicts, every error and the rule packs that judged them, its
acknowledgement and report; refreshing until the report exists; for an operator, its deliveries and its whole
timeline, as `gateway flows show` prints them) and the deposit of a file from the browser, which goes through
gateway.web.deposit.receive like an API deposit, then shows the new flow."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from gateway.access.sessions import Login
from gateway.data import views
from gateway.data.models import FlowState
from gateway.web.console.auth import Who, check_csrf
from gateway.web.console.errors import Missing, view
from gateway.web.console.invoices import is_date
from gateway.web.console.render import download, page
from gateway.web.deposit import receive
from gateway.web.problems import Problem

router = APIRouter(prefix="/console", include_in_schema=False)

REFRESH_SECONDS = 2
FILTERS = ("state", "channel", "account", "received_from", "received_to")


@dataclass
class Filters:
    """The list's filters as typed (to fill the form again) and as views.flows takes them, with what was
    ignored."""

    typed: dict[str, str]
    criteria: dict = field(default_factory=dict)
    ignored: list[tuple[str, str]] = field(default_factory=list)


def _filters(request: Request, login: Login) -> Filters:
    """State, channel and the days received (in the gateway's time zone); the account too, for an operator."""
    params = request.query_params
    filters = Filters({key: params.get(key, "").strip() for key in FILTERS})
    typed, criteria = filters.typed, filters.criteria
    if typed["state"] in FlowState.__members__:
        criteria["state"] = FlowState(typed["state"])
    elif typed["state"]:
        filters.ignored.append(("col.state", typed["state"]))
    if typed["channel"]:
        criteria["channel"] = typed["channel"]
    if typed["account"] and login.operator is not None:
        criteria["account"] = typed["account"]
    zone = ZoneInfo(request.app.state.gateway.settings.gateway.timezone)
    for key, bound, days in (("received_from", "since", 0), ("received_to", "until", 1)):
        if typed[key] and is_date(typed[key]):
            criteria[bound] = datetime.combine(date.fromisoformat(typed[key]) + timedelta(days=days), time(), zone)
        elif typed[key]:
            filters.ignored.append((f"flows.{key}", typed[key]))
    return filters


@router.get("/flows")
async def flows_page(request: Request, login: Who, after: str | None = None) -> Response:
    """The flows, newest first, filtered by state, channel, the days received and, for an operator, account."""
    app, filters = request.app.state.gateway, _filters(request, login)
    found = await view(views.flows, app, login.viewer, after=after or None, limit=app.settings.web.page_size,
                       **filters.criteria)
    channels = await view(views.channels, app)
    return page(request, "flows.html", login, found=found, filters=filters, states=list(FlowState), channels=channels)


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
