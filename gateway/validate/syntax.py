"""Which syntax a document is written in, decided by its root element, per gateway/schemas/catalog.toml.

The catalog is the single place that lists the accepted syntaxes and their official schemas, so adding a
syntax (or moving to a newer schema) is a data change, not a code change.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache, cached_property
from importlib.resources import files
from pathlib import Path

from lxml import etree

from gateway.schemas import resource


@dataclass(frozen=True)
class Syntax:
    """One catalog entry: a root element and the XSD that governs it."""

    name: str  # ubl-invoice | ubl-creditnote | cii
    namespace: str
    root: str
    package: str
    schema: str  # path inside the package directory

    @property
    def tag(self) -> str:
        """The root element in lxml's Clark notation, {namespace}local."""
        return f"{{{self.namespace}}}{self.root}"

    @cached_property
    def schema_path(self) -> Path:
        """The schema on disk: lxml needs a real file so its xs:include / xs:import resolve (resolved once: it is
        looked up for every document)."""
        return Path(str(files(self.package).joinpath(self.schema)))


@cache
def catalog() -> dict[str, Syntax]:
    """Catalog entries by root tag, read once per process."""
    with resource("catalog.toml").open("rb") as stream:
        entries = tomllib.load(stream)["syntax"]
    syntaxes = (Syntax(name=name, **entry) for name, entry in entries.items())
    return {syntax.tag: syntax for syntax in syntaxes}


def detect(root: etree._Element) -> Syntax | None:
    """The syntax whose root element this is, or None for a document the gateway does not accept."""
    return catalog().get(root.tag)
