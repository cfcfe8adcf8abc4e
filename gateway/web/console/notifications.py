"""The console's notifications page: the account's webhook and e-mail subscriptions, added and removed
through gateway.notify.subscriptions (which makes every check; a webhook's host is resolved there)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway.access.sessions import Login
from gateway.notify import EVENTS, subscriptions
from gateway.notify.subscriptions import SubscriptionError, Wanted
from gateway.web.console.auth import Posted, Who
from gateway.web.console.render import page

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/notifications")
async def notifications_page(request: Request, login: Who, removed: str | None = None) -> Response:
    return await _page(request, login, removed=removed if removed and removed.isdigit() else None)


@router.post("/notifications")
async def add(request: Request, login: Who, form: Posted) -> Response:
    """One more subscription; a secret the gateway made is shown on the page this once."""
    if login.account is None:
        return await _page(request, login)
    kind = "email" if form.get("kind") == "email" else "webhook"
    target = str(form.get("target") or "").strip()
    secret = str(form.get("secret") or "").strip() or None
    events = [e for e in form.getlist("events") if isinstance(e, str)] or None
    try:
        made = await run_in_threadpool(subscriptions.add, request.app.state.gateway, login.account,
                                       Wanted(kind, target, secret if kind == "webhook" else None, events))
    except SubscriptionError as refused:
        return await _page(request, login, 422, error=str(refused), typed={"kind": kind, "target": target})
    return await _page(request, login, made=made)


@router.post("/notifications/{subscription_id}/remove")
async def remove(request: Request, login: Who, form: Posted, subscription_id: int) -> Response:
    if login.account is None:
        return await _page(request, login)
    try:
        await run_in_threadpool(subscriptions.remove, request.app.state.gateway, login.account, subscription_id)
    except SubscriptionError as refused:
        return await _page(request, login, 404, error=str(refused))
    return RedirectResponse(f"/console/notifications?removed={subscription_id}", 303)


async def _page(request: Request, login: Login, status_code: int = 200, **context) -> Response:
    """The page; an operator, who has no subscriptions, is told so (403)."""
    shown = {"error": None, "made": None, "removed": None, "typed": {"kind": "webhook", "target": ""}, **context}
    if login.account is None:
        return page(request, "notifications.html", login, 403, subscriptions=[], events=EVENTS, **shown)
    listed = await run_in_threadpool(subscriptions.listing, request.app.state.gateway, login.account)
    return page(request, "notifications.html", login, status_code, subscriptions=listed, events=EVENTS, **shown)
