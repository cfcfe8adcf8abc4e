"""Logging in to the console and out, who is logged in, and the CSRF check of every form.

The session cookie (gateway.access.sessions) is HttpOnly, SameSite=Lax, Secure when served over TLS, for the whole
site. Every form carries the session's CSRF token in a hidden field; the login form, before any session, a
token also set in a cookie of its own (double submit). Failed logins are throttled by the rule of SFTP
passwords and API tokens (gateway.access.throttle): per address and name, a growing delay between two guesses, then
the name refused from that address, or the address banned when many names fail from it.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from gateway.access import sessions
from gateway.access.sessions import Login
from gateway.access.throttle import LOGGED_FAILURES
from gateway.ops.log import log
from gateway.web.console.errors import FormRefused, LoginRequired, Missing
from gateway.web.console.render import page

COOKIE = "gw_session"
_LOGIN_COOKIE = "gw_login"
HOME = "/console/"

router = APIRouter(prefix="/console", include_in_schema=False)


async def login_of(request: Request) -> Login:
    """The dependency of every console page: the live session of the request's cookie."""
    cookie = request.cookies.get(COOKIE)
    found = await run_in_threadpool(sessions.resume, request.app.state.gateway, cookie) if cookie else None
    if found is None:
        raise LoginRequired()
    return found


Who = Annotated[Login, Depends(login_of)]


def check_csrf(login: Login, sent: str | None) -> None:
    if not sent or not hmac.compare_digest(sent.encode(), login.csrf.encode()):
        raise FormRefused()


async def posted(request: Request, login: Who) -> FormData:
    """The dependency of every console form but the deposit's: its fields, once its CSRF token is checked."""
    form = await request.form()
    token = form.get("csrf")
    check_csrf(login, token if isinstance(token, str) else None)
    return form


Posted = Annotated[FormData, Depends(posted)]


async def operator_of(login: Who) -> Login:
    """The dependency of every operator page: an operator's session; an account's gets 404, as a page that does
    not exist."""
    if login.operator is None:
        raise Missing()
    return login


Operating = Annotated[Login, Depends(operator_of)]


async def operator_posted(request: Request, login: Operating) -> FormData:
    """An operator's form: an account's is not found (404) before its CSRF token is even looked at."""
    return await posted(request, login)


OperatorPosted = Annotated[FormData, Depends(operator_posted)]


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a console page, never another site."""
    if target and (target == "/console" or target.startswith("/console/")) and "\\" not in target:
        return target
    return HOME


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(request: Request, status_code: int = 200, error: str | None = None,
                target: str | None = None) -> Response:
    """The login form, with a new token for it; target: where to go once logged in (else ?next=)."""
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", None, status_code, error=error, token=token,
                    next=safe_next(target or request.query_params.get("next")))
    response.set_cookie(_LOGIN_COOKIE, token, path="/console/login", httponly=True, samesite="lax",
                        secure=_secure(request))
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(request: Request, name: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
                csrf: Annotated[str, Form()] = "", target: Annotated[str, Form(alias="next")] = HOME) -> Response:
    expected = request.cookies.get(_LOGIN_COOKIE)
    if not csrf or not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        raise FormRefused()
    throttle, ip = request.app.state.throttle, request.client.host if request.client else "?"
    turn = await run_in_threadpool(throttle.turn, ip, name, throttle.max_delay)
    if turn.refused:
        request.app.state.gateway.repeats.warning("console_login_refused", ("reason",), ip=ip, reason=turn.refused)
        return _login_page(request, 429, "login.banned", target)
    await asyncio.sleep(turn.wait)
    found = await run_in_threadpool(sessions.login, request.app.state.gateway, name, password)
    if found is None:
        delay = await run_in_threadpool(throttle.failed, turn)
        request.app.state.gateway.repeats.warning("console_login_failed", first=LOGGED_FAILURES, ip=ip, delay=delay,
                                                  locked=throttle.locked(ip, name), banned=throttle.banned(ip))
        await asyncio.sleep(delay)
        return _login_page(request, 401, "login.refused", target)
    await run_in_threadpool(throttle.succeeded, turn)
    cookie, who = found
    if earlier := request.cookies.get(COOKIE):  # a login replaces the browser's previous session
        await run_in_threadpool(sessions.logout, request.app.state.gateway, earlier)
    log.info("console_login", user=who.name, ip=ip)
    response = RedirectResponse(safe_next(target), 303)
    response.set_cookie(COOKIE, cookie, path="/", httponly=True, samesite="lax", secure=_secure(request))
    response.delete_cookie(_LOGIN_COOKIE, path="/console/login")
    return response


@router.post("/logout", dependencies=[Depends(posted)])
async def logout(request: Request, login: Who) -> Response:
    await run_in_threadpool(sessions.logout, request.app.state.gateway, request.cookies[COOKIE])
    log.info("console_logout", user=login.name)
    response = RedirectResponse("/console/login", 303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))
    return response
