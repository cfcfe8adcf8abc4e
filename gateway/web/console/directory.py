"""The console's directory pages, for operators: a structure searched by SIRET or name, one structure with its
flags, services and accounts (what `gateway directory show` prints), and a new Chorus Pro export imported by
upload through gateway.route.import_directory, as `gateway directory import` does, its errors shown line by
line. An account's session gets 404 on each."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from gateway.access.sessions import Login
from gateway.app import App
from gateway.data import views
from gateway.data.models import Structure
from gateway.route import DirectoryImportError, Imported, import_directory
from gateway.web.console.auth import Operating, OperatorPosted
from gateway.web.console.errors import view
from gateway.web.console.render import page

router = APIRouter(prefix="/console", include_in_schema=False)

FLAGS = [name for name, field in Structure.model_fields.items() if field.annotation is bool]


@router.get("/directory")
async def directory_page(request: Request, login: Operating, q: str = "") -> Response:
    return await _page(request, login, q.strip())


@router.get("/directory/{siret}")
async def structure_page(request: Request, login: Operating, siret: str) -> Response:
    found = await view(views.structure, request.app.state.gateway, siret)
    return page(request, "structure.html", login, structure=found, flags=FLAGS)


@router.post("/directory/import")
async def import_page(request: Request, login: Operating, form: OperatorPosted) -> Response:
    """The uploaded export (and services file, if any), imported in one transaction; a file with bad rows is
    not imported at all, and each bad row is named (file, line, column)."""
    structures, services = form.get("structures"), form.get("services")
    if not isinstance(structures, UploadFile) or not structures.filename:
        return await _page(request, login, "", 422, missing=True)
    uploads = [structures] + ([services] if isinstance(services, UploadFile) and services.filename else [])
    try:
        imported = await run_in_threadpool(_import, request.app.state.gateway, uploads)
    except DirectoryImportError as refused:
        return await _page(request, login, "", 422, errors=refused.errors)
    return await _page(request, login, "", imported=imported)


def _import(app: App, uploads: list[UploadFile]) -> Imported:
    """The uploads saved under their own names (so that errors name them as the operator knows them), then
    imported."""
    with tempfile.TemporaryDirectory(prefix="directory-") as folder:
        paths = []
        for number, upload in enumerate(uploads):
            name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(upload.filename or "").name)[:100] or f"file{number}.csv"
            path = Path(folder) / f"{number}" / name
            path.parent.mkdir()
            with path.open("wb") as copy:
                upload.file.seek(0)
                shutil.copyfileobj(upload.file, copy)
            paths.append(path)
        return import_directory(app.engine, *paths)


async def _page(request: Request, login: Login, q: str, status_code: int = 200, **context) -> Response:
    app = request.app.state.gateway
    found = await view(views.structures, app, q, app.settings.web.page_size) if q else []
    shown = {"errors": None, "imported": None, "missing": False, **context}
    return page(request, "directory.html", login, status_code, q=q, found=found, flags=FLAGS, **shown)
