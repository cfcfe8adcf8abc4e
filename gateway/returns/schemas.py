"""The XSDs of the gateway's own documents (acknowledgement, integration report).

Every ack and report the gateway writes is validated against them in tests, so loading is cached
and failure is a plain ValueError carrying the schema's error log.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"


@cache
def schema(name: str) -> etree.XMLSchema:
    """The compiled schemas/<name>.xsd ("ack", "report")."""
    return etree.XMLSchema(etree.parse(str(SCHEMAS_DIR / f"{name}.xsd")))


def assert_valid(name: str, xml_bytes: bytes) -> None:
    """Raise ValueError unless xml_bytes is well-formed and valid against schemas/<name>.xsd."""
    try:
        document = etree.fromstring(xml_bytes)
    except etree.XMLSyntaxError as error:
        raise ValueError(f"not well-formed XML: {error}") from error
    checker = schema(name)
    if not checker.validate(document):
        raise ValueError(f"invalid against {name}.xsd:\n{checker.error_log}")
