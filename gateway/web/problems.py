"""Errors as RFC 9457 problem details: a JSON object with a stable `type` per kind of error, a title, the
HTTP status and a detail for a person, served as application/problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.ops.dbdown import RETRY_MAX_SECONDS, is_database_down

MEDIA_TYPE = "application/problem+json"
_PREFIX = "urn:gateway:problem:"


class Problem(Exception):
    """An answer other than success: raised anywhere below a route, rendered by the handler below."""

    def __init__(self, status: int, kind: str, title: str, detail: str | None = None,
                 headers: Mapping[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or title)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.headers, self.extra = headers, extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body = {"type": _PREFIX + self.kind, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        return {**body, **self.extra}


def not_found(detail: str) -> Problem:
    return Problem(404, "not-found", "Not found", detail)


def database_unavailable() -> Problem:
    return Problem(503, "database-unavailable", "Database unavailable",
                   "The gateway's database does not answer for now; try again shortly. A deposit may already be "
                   "stored: send it again with the same Idempotency-Key to get its flow, not a duplicate.",
                   headers={"Retry-After": str(int(RETRY_MAX_SECONDS))})


def response(problem: Problem, instance: str | None = None) -> JSONResponse:
    return JSONResponse(problem.body(instance), problem.status, headers=problem.headers, media_type=MEDIA_TYPE)


_HTTP_KINDS = {404: ("not-found", "Not found"), 405: ("method-not-allowed", "Method not allowed"),
               401: ("unauthenticated", "Authentication required")}


def install(app: FastAPI) -> None:
    """Every error the application or the framework raises is answered as a problem."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"location": list(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        return response(Problem(422, "invalid-request", "Invalid request",
                                "; ".join(f"{'.'.join(map(str, e['location']))}: {e['message']}" for e in errors),
                                errors=errors), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind, title = _HTTP_KINDS.get(exc.status_code, ("http-error", "HTTP error"))
        return response(Problem(exc.status_code, kind, title, str(exc.detail), headers=exc.headers),
                        request.url.path)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        """The database out of reach (its alarm says so once in the log): 503, to be tried again."""
        if not is_database_down(exc):
            raise exc
        return response(database_unavailable(), request.url.path)
