"""Validate a parsed document against the official XSD its catalog entry names.

Schemas are compiled lazily and kept per thread, not shared: lxml's XMLSchema writes each run's errors
into an error_log stored on the schema object, so two threads validating with one object would mix
their errors, and a lock would serialise the costliest step of the pipeline (validation releases the
GIL, so separate objects really run in parallel). Compiling a schema takes well under 0.1 s, once per
thread and schema.
"""

from __future__ import annotations

import threading
from pathlib import Path

from lxml import etree

from gateway.data.findings import Finding, cap
from gateway.validate.syntax import Syntax

STAGE = "xsd"
RULE = "XSD"

_local = threading.local()


def validate(root: etree._Element, syntax: Syntax) -> list[Finding]:
    """One finding per schema error (libxml2's message, line and element path), capped; empty when valid."""
    return validate_against(root, syntax.schema_path)


def validate_against(root: etree._Element, schema_path: Path) -> list[Finding]:
    """The findings of the schema at schema_path (one installed as a rule pack, say) on root, capped
    (gateway.data.findings.cap); lxml keeps every error of the run (about 800 bytes each) with the schema, so the log
    is cleared once read rather than held until this thread's next document."""
    schema = _schema(schema_path)
    if schema.validate(root):
        return []
    try:
        return cap(_finding(entry) for entry in schema.error_log)
    finally:
        schema._clear_error_log()


def _schema(path: Path) -> etree.XMLSchema:
    """This thread's compiled schema at path, compiled on first use."""
    schemas: dict[Path, etree.XMLSchema] = _local.__dict__.setdefault("schemas", {})
    schema = schemas.get(path)
    if schema is None:
        schema = schemas[path] = etree.XMLSchema(file=str(path))
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
