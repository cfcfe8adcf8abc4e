"""The console's account pages, for operators: the accounts listed and added, and one account's password reset,
its logins disabled or enabled again, its API tokens issued (a new token shown once) and revoked; through
gateway.access.accounts and gateway.access.tokens, as `gateway accounts add|disable|token` do. An account's session gets
404 on each."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from gateway.access import accounts as accounts_service
from gateway.access import tokens
from gateway.access.accounts import AccountError
from gateway.access.sessions import Login
from gateway.data.models import Role
from gateway.web.console.auth import Operating, OperatorPosted
from gateway.web.console.errors import Missing
from gateway.web.console.render import page

router = APIRouter(prefix="/console", include_in_schema=False)

ROLES = [r.value for r in Role]
_DONE = ("added", "password", "disabled", "enabled", "revoked")  # what an account's page may say was done


@router.get("/accounts")
async def accounts_page(request: Request, login: Operating) -> Response:
    return await _list(request, login)


@router.post("/accounts")
async def add(request: Request, login: Operating, form: OperatorPosted) -> Response:
    """A new account (an existing name is refused: this form never changes one)."""
    typed = {key: str(form.get(key) or "").strip() for key in ("name", "role", "sirets")}
    password = str(form.get("password") or "")
    if typed["role"] not in ROLES:
        return await _list(request, login, 422, error=f"role: {', '.join(ROLES)}", typed=typed)
    try:
        await run_in_threadpool(accounts_service.add, request.app.state.gateway, typed["name"], Role(typed["role"]),
                                [s for s in re.split(r"[\s,;]+", typed["sirets"]) if s], password or None, new=True)
    except AccountError as refused:
        return await _list(request, login, 422, error=str(refused), typed=typed)
    return RedirectResponse(f"/console/accounts/{typed['name']}?done=added", 303)


@router.get("/accounts/{name}")
async def account_page(request: Request, login: Operating, name: str, done: str | None = None) -> Response:
    return await _account(request, login, name, done=done if done in _DONE else None)


@router.post("/accounts/{name}/password")
async def password(request: Request, login: Operating, form: OperatorPosted, name: str) -> Response:
    """A new password for SFTP and the console, as `gateway accounts add NAME --role ROLE --password-stdin`."""
    account = await _found(request, name)
    try:
        await run_in_threadpool(accounts_service.add, request.app.state.gateway, name, Role(account["role"]),
                                password=str(form.get("password") or ""))
    except AccountError as refused:
        return await _account(request, login, name, 422, error=str(refused))
    return RedirectResponse(f"/console/accounts/{name}?done=password", 303)


@router.post("/accounts/{name}/disable")
async def disable(request: Request, login: Operating, form: OperatorPosted, name: str) -> Response:
    """Disable the account's logins (disabled=1), or enable them again (disabled=0)."""
    await _found(request, name)
    disabled = form.get("disabled") != "0"
    await run_in_threadpool(accounts_service.disable, request.app.state.gateway, name, disabled)
    return RedirectResponse(f"/console/accounts/{name}?done={'disabled' if disabled else 'enabled'}", 303)


@router.post("/accounts/{name}/tokens")
async def issue(request: Request, login: Operating, form: OperatorPosted, name: str) -> Response:
    """A new API token, shown on the page this once (only its digest is kept)."""
    await _found(request, name)
    token_id, token = await run_in_threadpool(tokens.issue, request.app.state.gateway, account=name)
    return await _account(request, login, name, made={"id": token_id, "token": token})


@router.post("/accounts/{name}/tokens/{token_id}/revoke")
async def revoke(request: Request, login: Operating, form: OperatorPosted, name: str, token_id: str) -> Response:
    await _found(request, name)
    try:
        await run_in_threadpool(tokens.revoke, request.app.state.gateway, token_id, account=name)
    except AccountError as refused:
        raise Missing() from refused
    return RedirectResponse(f"/console/accounts/{name}?done=revoked", 303)


async def _found(request: Request, name: str) -> dict:
    """The account as the listing shows it; Missing if there is none by that name."""
    listed = await run_in_threadpool(accounts_service.listing, request.app.state.gateway)
    found = next((a for a in listed if a["name"] == name), None)
    if found is None:
        raise Missing()
    return found


async def _list(request: Request, login: Login, status_code: int = 200, **context) -> Response:
    listed = await run_in_threadpool(accounts_service.listing, request.app.state.gateway)
    shown = {"error": None, "typed": {"name": "", "role": ROLES[0], "sirets": ""}, **context}
    return page(request, "accounts.html", login, status_code, accounts=listed, roles=ROLES, **shown)


async def _account(request: Request, login: Login, name: str, status_code: int = 200, **context) -> Response:
    account = await _found(request, name)
    held = await run_in_threadpool(tokens.listing, request.app.state.gateway, account=name)
    shown = {"error": None, "made": None, "done": None, **context}
    return page(request, "account.html", login, status_code, account=account, tokens=held, **shown)
