"""The API's notification subscriptions: an account replaces or reads its webhooks and e-mail addresses
(gateway.notify.subscriptions does the checks, this module translates HTTP)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from gateway.access.tokens import Holder
from gateway.notify import subscriptions
from gateway.notify.subscriptions import SubscriptionError, Wanted, WebhookRefused
from gateway.web import schemas
from gateway.web.auth import account_of, holder
from gateway.web.problems import Problem

router = APIRouter(prefix="/api/v1", dependencies=[Depends(holder)], tags=["notifications"])
Caller = Annotated[Holder, Depends(holder)]


@router.put("/subscriptions", response_model=list[schemas.Subscription],
            summary="Replace the caller's subscriptions (webhooks, e-mail addresses) to its events")
async def replace(request: Request, caller: Caller, wanted: schemas.Subscriptions) -> list[dict]:
    """Those already there (same URL or address) are kept, with their secrets unless a new one is given; the
    others are removed. A webhook's secret made by the gateway is in this answer only."""
    asked = ([Wanted("webhook", w.url, w.secret, w.events) for w in wanted.webhooks]
             + [Wanted("email", e.address, None, e.events) for e in wanted.emails])
    try:
        return await run_in_threadpool(subscriptions.replace, request.app.state.gateway, account_of(caller), asked)
    except WebhookRefused as exc:
        raise Problem(422, "webhook-target-refused", "Webhook target refused", str(exc)) from exc
    except SubscriptionError as exc:
        raise Problem(422, "subscription-invalid", "Subscription refused", str(exc)) from exc


@router.get("/subscriptions", response_model=list[schemas.Subscription],
            summary="The caller's subscriptions (never their secrets)")
async def listing(request: Request, caller: Caller) -> list[dict]:
    return await run_in_threadpool(subscriptions.listing, request.app.state.gateway, account_of(caller))
