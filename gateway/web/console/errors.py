"""What the console answers when no one is logged in (the login page), when a page is not the visitor's to
see or does not exist (404, the same for both), and when a form comes without its CSRF token (403)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway.data import views
from gateway.web.console.render import page, query


class LoginRequired(Exception):
    """No live session: the visitor is sent to the login page."""


class FormRefused(Exception):
    """A form posted without its CSRF token."""


class Missing(Exception):
    """Nothing here for this visitor."""


async def view(function, *args, **kwargs):
    """A views function in a worker thread (it waits on the database); NotFound as a 404 page."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except views.NotFound as exc:
        raise Missing() from exc


def install(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        """A page asked for is offered again once logged in; a form posted is not (it must be filled again)."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/console/login" + (f"?{query(next=target)}" if request.method == "GET" else ""), 303)

    @app.exception_handler(FormRefused)
    async def _refused(request: Request, exc: FormRefused) -> Response:
        return page(request, "error.html", None, 403, title="error.csrf", detail="error.csrf.detail")

    @app.exception_handler(Missing)
    async def _missing(request: Request, exc: Missing) -> Response:
        return missing(request)


def missing(request: Request) -> Response:
    return page(request, "error.html", None, 404, title="error.not_found", detail="error.not_found.detail")
