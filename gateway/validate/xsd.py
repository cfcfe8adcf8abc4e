"""Validate a parsed document against the official XSD its catalog entry names.

Schemas are compiled lazily and kept per thread, not shared: lxml's XMLSchema writes each run's errors
into an error_log stored on the schema object, so two threads validating with one object would mix
their errors, and a lock would serialise the costliest step of the pipeline (validation releases the
GIL, so separate objects really run in parallel). Compiling a schema takes well under 0.1 s, once per
thread and syntax.
"""

from __future__ import annotations

import threading

from lxml import etree

from gateway.findings import Finding
from gateway.validate.syntax import Syntax

STAGE = "xsd"
RULE = "XSD"

_local = threading.local()


def validate(root: etree._Element, syntax: Syntax) -> list[Finding]:
    """One finding per schema error (libxml2's message, line and element path); empty when valid."""
    schema = _schema(syntax)
    if schema.validate(root):
        return []
    return [_finding(entry) for entry in schema.error_log]


def _schema(syntax: Syntax) -> etree.XMLSchema:
    """This thread's compiled schema for syntax, compiled on first use."""
    schemas: dict[str, etree.XMLSchema] = _local.__dict__.setdefault("schemas", {})
    schema = schemas.get(syntax.name)
    if schema is None:
        schema = schemas[syntax.name] = etree.XMLSchema(file=str(syntax.schema_path))
    return schema


def _finding(entry: etree._LogEntry) -> Finding:
    severity = "fatal" if entry.level >= etree.ErrorLevels.ERROR else "warning"
    return Finding(
        stage=STAGE,
        rule=RULE,
        message=entry.message,
        severity=severity,
        line=entry.line or None,
        path=entry.path or None,
    )
