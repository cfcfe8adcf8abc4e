"""The browser console under /console: server-rendered pages for suppliers, recipients and operators
(Jinja2 templates in gateway/web/templates, one stylesheet and a few lines of script in gateway/web/static,
all served here: no CDN). Pages read gateway.data.views and act through the services the API uses; nothing here
decides a business question."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from gateway.web.console import accounts, auth, directory, errors, flows, invoices, notifications, operations
from gateway.web.console.render import HEADERS, STATIC

PREFIX = "/console"


def install(app: FastAPI) -> None:
    """Mount the console on app: its routes, its static files, / sent to it, its error pages and headers."""
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")
    for module in (auth, invoices, flows, notifications, operations, directory, accounts):
        app.include_router(module.router)
    errors.install(app)

    @app.get("/", include_in_schema=False)
    async def _root() -> Response:
        return RedirectResponse(f"{PREFIX}/", 303)

    @app.get(f"{PREFIX}/{{rest:path}}", include_in_schema=False)
    async def _unknown(request: Request, rest: str) -> Response:
        return errors.missing(request)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        """Every console answer: no framing, no sniffing, no script or style from elsewhere; pages not cached."""
        response = await call_next(request)
        if request.url.path == "/" or request.url.path.startswith(PREFIX):
            response.headers.update(HEADERS)
            if not request.url.path.startswith(f"{PREFIX}/static/"):
                response.headers["Cache-Control"] = "no-store"
        return response
