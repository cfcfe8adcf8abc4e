"""The gateway's HTTP face: the API for programs (gateway.web.api, gateway.web.subscriptions), the browser
console for people (gateway.web.console), health and metrics (gateway.web.health), served by uvicorn in the
`web` role of `gateway run` (gateway.web.server)."""

from __future__ import annotations

import time

from fastapi import FastAPI, Request

from gateway.access.throttle import FailureThrottle
from gateway.app import App
from gateway.ops.log import log
from gateway.web import api, console, health, problems, subscriptions


def create_app(gateway: App) -> FastAPI:
    """The ASGI application over the gateway's shared parts (database, store, intake)."""
    app = FastAPI(title="gateway", version="1", summary="EDI flow gateway for e-invoicing: deposit flows, "
                  "follow flows and invoices, set statuses, receive notifications.",
                  openapi_url="/api/openapi.json", docs_url="/api/docs", redoc_url=None)
    settings = gateway.settings.web
    app.state.gateway = gateway
    app.state.throttle = FailureThrottle.of(gateway.engine, settings)
    problems.install(app)
    app.include_router(api.router)
    app.include_router(subscriptions.router)
    app.include_router(health.router)
    console.install(app)

    @app.middleware("http")
    async def _log_request(request: Request, call_next):
        """One line per request: who, what, the answer and its time (never the query's values nor headers)."""
        started = time.perf_counter()
        response = await call_next(request)
        holder = getattr(request.state, "holder", None)
        log.info("http_request", method=request.method, path=request.url.path, status=response.status_code,
                 ms=round(1000 * (time.perf_counter() - started), 1), token=holder.token_id if holder else None,
                 ip=request.client.host if request.client else None)
        return response

    return app
