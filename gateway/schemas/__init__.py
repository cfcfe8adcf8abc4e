"""The gateway's schemas and catalogs, shipped in the package and read with importlib.resources: the XSDs of
what it writes (ack, report, status, Peppol's ApplicationResponse), which official XSD judges which document
(catalog.toml), the rule packs and how documents choose them (rulepacks.toml), and the documents validator
processes warm up on (warmup/).
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable


def resource(name: str) -> Traversable:
    """A file of this folder by its path in it, "/"-separated ("ack.xsd", "warmup/ubl-invoice.xml")."""
    return files(__name__).joinpath(*name.split("/"))
