"""The console's pages: Jinja2 templates (gateway/web/templates, every value escaped), rendered in the
request's language with what every page needs, and the headers every console answer carries."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.templating import Jinja2Templates

from gateway.access.sessions import Login
from gateway.data.models import as_utc
from gateway.lifecycle.statuses import EQUIVALENTS, PLATFORM_REJECTION, Status
from gateway.web.console import i18n

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"
# No inline script or style, nothing from elsewhere: what an escaping mistake would let in still cannot run.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
_LANG_COOKIE_AGE = 365 * 24 * 3600

_templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                                             undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True))


def page(request: Request, template: str, login: Login | None, status_code: int = 200, **context) -> HTMLResponse:
    """template rendered for login (None: nobody logged in yet) in the request's language."""
    lang = i18n.choose(request)
    zone = ZoneInfo(request.app.state.gateway.settings.gateway.timezone)

    def when(moment: datetime | None) -> str:
        return as_utc(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if moment else ""

    def lang_url(code: str) -> str:
        return f"{request.url.path}?{urlencode({**request.query_params, 'lang': code})}"

    response = _templates.TemplateResponse(request, template, {
        "t": i18n.Catalogue(lang), "lang": lang, "languages": i18n.LANGUAGES, "lang_url": lang_url, "login": login,
        "when": when, "query": query, "cdar": cdar, "status_name": lambda code: Status(code).name, "refresh": None,
        **context}, status_code=status_code)
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, max_age=_LANG_COOKIE_AGE, path="/", samesite="lax",
                            secure=request.url.scheme == "https")
    return response


def query(base: dict | None = None, **values) -> str:
    """A query string of base updated with values (empty ones left out)."""
    return urlencode({key: value for key, value in {**(base or {}), **values}.items() if value not in (None, "")})


def cdar(code: str | None) -> str:
    """A status's code in the reform's terms, as the supplier receives it: '208 Suspendue'."""
    equivalent = EQUIVALENTS[Status(code)] if code else PLATFORM_REJECTION
    return f"{equivalent.cdar} {equivalent.cdar_label}"


def download(name: str, content: bytes) -> Response:
    """A file to save, under its gateway-made name."""
    media = "application/pdf" if name.endswith(".pdf") else "application/xml"
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{safe}"'})
