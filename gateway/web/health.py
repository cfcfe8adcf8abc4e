"""Health for load balancers and orchestrators: /healthz (the process answers) and /readyz (it can work:
database reachable, validator processes up where this process judges flows, room left on disk); /metrics for
Prometheus (gateway.ops.metrics). None asks for a token: a scraper or a probe has none."""

from __future__ import annotations

import shutil

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from gateway.app import App
from gateway.data.db import session_scope
from gateway.ops import metrics

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="The process can work; 503 with the reasons otherwise")
async def readyz(request: Request) -> JSONResponse:
    reasons = await run_in_threadpool(_unready, request.app.state.gateway)
    if reasons:
        return JSONResponse({"status": "not ready", "reasons": reasons}, 503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Metrics in Prometheus's text format", response_class=Response)
async def prometheus(request: Request) -> Response:
    body = await run_in_threadpool(metrics.exposition, request.app.state.gateway.engine)
    return Response(body, media_type=metrics.CONTENT_TYPE)


def _unready(app: App) -> list[str]:
    reasons = []
    try:
        with session_scope(app.engine, write=False) as session:  # never waits for SQLite's write lock
            session.execute(text("SELECT 1"))
    except Exception as exc:  # whatever the driver raises, the answer is "not ready", with its reason
        reasons.append(f"database unreachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    if app.rules is not None and not app.rules.pool.running():
        reasons.append("validator processes down")
    free = shutil.disk_usage(app.settings.gateway.data_dir).free
    if free < app.settings.web.min_free_bytes:
        reasons.append(f"disk space low: {free} bytes free under {app.settings.gateway.data_dir}, "
                       f"below [web] min_free_bytes {app.settings.web.min_free_bytes}")
    return reasons
