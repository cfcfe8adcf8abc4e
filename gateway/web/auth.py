"""Who is calling: the holder of the bearer token, or a 401 problem. Failed tokens are throttled per client
address by the rule of SFTP passwords (gateway.access.throttle), as failures naming no account: a growing delay before
the answer, then a ban; a flood of them is summed up in the log (gateway.ops.alarm.Repeats)."""

from __future__ import annotations

import asyncio

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from gateway.access import tokens
from gateway.access.throttle import LOGGED_FAILURES
from gateway.data.views import Viewer
from gateway.ops import metrics
from gateway.web.problems import Problem

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gateway"'}


def _refused(detail: str) -> Problem:
    return Problem(401, "unauthenticated", "Authentication required", detail, headers=_CHALLENGE)


async def holder(request: Request) -> tokens.Holder:
    """The dependency of every API route: the token's holder (an account or an operator)."""
    state = request.app.state
    ip = request.client.host if request.client else "?"
    if state.throttle.locked(ip, None):
        raise Problem(429, "too-many-failures", "Too many failed authentications",
                      "This address is refused for a while after repeated failed authentications.")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _refused("Send the account's API token as 'Authorization: Bearer <token>'.")
    found = await run_in_threadpool(tokens.authenticate, state.gateway, token.strip())
    if found is None:
        delay = await run_in_threadpool(state.throttle.fail, ip)
        metrics.api_auth_failed()
        state.gateway.repeats.warning("api_auth_failed", first=LOGGED_FAILURES, ip=ip, delay=delay,
                                      banned=state.throttle.locked(ip, None))
        await asyncio.sleep(delay)
        raise _refused("Unknown or revoked token.")
    request.state.holder = found
    return found


def viewer(found: tokens.Holder) -> Viewer:
    return Viewer(found.account, found.receives)


def account_of(found: tokens.Holder) -> str:
    """The account the token speaks for; an operator's is refused (403) where only an account may act."""
    if found.account is None:
        raise Problem(403, "account-required", "An account's token is required",
                      "Operators deposit no flows and receive no notifications: use the account's own token.")
    return found.account
