"""Health for load balancers and orchestrators: /healthz (the process answers) and /readyz (it can work:
database reachable, validator processes up where this process judges flows, room left on disk)."""

from __future__ import annotations

import shutil

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from gateway.app import App

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


def _unready(app: App) -> list[str]:
    reasons = []
    try:
        with app.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        reasons.append(f"database unreachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    if app.rules is not None and not app.rules.pool.running():
        reasons.append("validator processes down")
    free = shutil.disk_usage(app.settings.gateway.data_dir).free
    if free < app.settings.web.min_free_bytes:
        reasons.append(f"disk space low: {free} bytes free under {app.settings.gateway.data_dir}, "
                       f"below [web] min_free_bytes {app.settings.web.min_free_bytes}")
    return reasons
