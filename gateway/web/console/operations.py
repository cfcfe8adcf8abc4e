"""The console's operator pages on the gateway at work: the queue (what `gateway queue` shows, refreshing by
itself), the throughput charts (gateway.ops.throughput) and the deliveries, with Retry for the dead ones (what
`gateway deliveries retry` does). An account's session gets 404 on each, as on a page that does not exist."""

from __future__ import annotations

from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from gateway.data import views
from gateway.data.models import DeliveryState, as_utc
from gateway.engine import queue
from gateway.ops import throughput
from gateway.route.delivery import retry
from gateway.web.console import charts
from gateway.web.console.auth import Operating, OperatorPosted
from gateway.web.console.errors import view
from gateway.web.console.render import page

router = APIRouter(prefix="/console", include_in_schema=False)

QUEUE_REFRESH = 5  # seconds between two looks of the queue page
STATES = [s.value for s in DeliveryState]


@router.get("/queue")
async def queue_page(request: Request, login: Operating) -> Response:
    app = request.app.state.gateway
    shown = await view(queue.overview, app.engine, app.settings.worker.lease_seconds)
    return page(request, "queue.html", login, overview=shown, lease=app.settings.worker.lease_seconds,
                duration=duration, refresh=QUEUE_REFRESH)


def duration(seconds: float | None) -> str:
    """An age for a person: '42 s', '3 min 05 s', '2 h 07 min'."""
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


@router.get("/throughput")
async def throughput_page(request: Request, login: Operating) -> Response:
    app = request.app.state.gateway
    zone = ZoneInfo(app.settings.gateway.timezone)
    found = await view(throughput.throughput, app)

    def at(pattern: str):
        return lambda moment: as_utc(moment).astimezone(zone).strftime(pattern)

    return page(request, "throughput.html", login, week=found["invoices"], rules=found["rules"],
                minutes=charts.columns("per-minute", found["flows_per_minute"], ["flows"], at("%H:%M"), 10),
                hours=charts.columns("per-hour", found["flows_per_hour"], ["flows"], at("%d/%m %Hh"), 24),
                invoices=charts.columns("invoices", found["invoices_per_hour"], ["accepted", "rejected"],
                                        at("%d/%m %Hh"), 24),
                ranking=charts.ranking("rules", [(r["rule"], r["rejected"]) for r in found["rules"]], "rejected"))


@router.get("/deliveries")
async def deliveries_page(request: Request, login: Operating, state: str = DeliveryState.DEAD.value) -> Response:
    """The deliveries in a state (the dead ones first: those waiting for an operator), newest first; the outcome
    of a retry (?requeued=ID&refused=ID) said above them."""
    app = request.app.state.gateway
    chosen = DeliveryState(state) if state in STATES else DeliveryState.DEAD
    found = await view(views.deliveries, app, chosen, app.settings.web.page_size)
    params = request.query_params
    return page(request, "deliveries.html", login, deliveries=found, state=chosen.value,
                states=STATES,
                requeued=[n for n in params.getlist("requeued") if n.isdigit()],
                refused=[n for n in params.getlist("refused") if n.isdigit()])


@router.post("/deliveries/retry")
async def retry_deliveries(request: Request, login: Operating, form: OperatorPosted) -> Response:
    """Requeue the delivery of the row's button (one), else every one ticked (id), as `gateway deliveries retry`
    does; the list then says which were requeued and which could not be (delivered already, or unknown)."""
    one = form.get("one")
    chosen = [one] if isinstance(one, str) and one else form.getlist("id")
    ids = list(dict.fromkeys(int(n) for n in chosen if isinstance(n, str) and n.isdigit()))
    outcome: list[tuple[str, int]] = []
    for delivery_id in ids:
        delivery = await view(retry, request.app.state.gateway, delivery_id)
        done = delivery is not None and delivery.state is not DeliveryState.DELIVERED
        outcome.append(("requeued" if done else "refused", delivery_id))
    state = form.get("state") if form.get("state") in STATES else DeliveryState.DEAD.value
    return RedirectResponse(f"/console/deliveries?{urlencode([('state', state), *outcome])}", 303)
