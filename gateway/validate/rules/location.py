"""The line of the element an SVRL location points at, so a supplier can find it in the file.

Schematron stylesheets write locations as XPaths in one of three step forms, depending on how they
were compiled:

    /*:Invoice[namespace-uri()='urn:...:Invoice-2'][1]/*:ID[namespace-uri()='urn:...'][1]   (CEN)
    /Q{urn:...:Invoice-2}Invoice[1]/Q{urn:...}ID[1]                                         (XSLT 3 path())
    /ubl:Invoice[1]/cbc:ID[1]                                                                (prefixed)

The path is walked step by step on the lxml tree of the document (no XPath evaluation, so a location
from an untrusted report can cost nothing but the walk). A trailing attribute or text step points at its
element. A step that cannot be followed gives no line rather than a wrong one.

>>> root = etree.fromstring(b'<a xmlns="urn:x">\\n<b/>\\n<b><c k="1"/></b></a>')
>>> line_of(root, "/*:a[namespace-uri()='urn:x'][1]/*:b[namespace-uri()='urn:x'][2]/*:c[namespace-uri()='urn:x'][1]/@k")
3
>>> line_of(root, "/Q{urn:x}a[1]/Q{urn:x}b[1]")
2
>>> line_of(root, "/x:a[1]/x:b[2]/text()[1]", {"x": "urn:x"})
3
>>> line_of(root, "/x:a[1]/x:b[3]", {"x": "urn:x"}) is None
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from lxml import etree

_STEP = re.compile(
    r"""/(?:
        \*:(?P<wild>[\w.-]+)\[namespace-uri\(\)='(?P<wild_ns>[^']*)'\]
      | Q\{(?P<q_ns>[^}]*)\}(?P<q>[\w.-]+)
      | (?:(?P<prefix>[\w.-]+):)?(?P<local>[\w.-]+)
    )(?:\[(?P<n>\d+)\])?(?=/|$)""",
    re.VERBOSE,
)


def line_of(root: etree._Element, location: str, prefixes: Mapping[str, str] | None = None) -> int | None:
    """The source line of the element at location, or None when the path cannot be followed."""
    steps = _element_steps(location)
    if not steps:
        return None
    namespaces = {**root.nsmap, **(prefixes or {})}
    element: etree._Element | None = None
    for step in steps:
        tag = _tag(step, namespaces)
        element = _child(root, element, tag, int(step["n"] or 1)) if tag else None
        if element is None:
            return None
    return element.sourceline if element is not None else None


def _element_steps(location: str) -> list[re.Match[str]]:
    """The element steps of the path: up to its first attribute, text() or other non-element step."""
    steps = []
    position = 0
    while position < len(location):
        match = _STEP.match(location, position)
        if match is None:
            break
        steps.append(match)
        position = match.end()
    return steps


def _tag(step: re.Match[str], namespaces: Mapping[str | None, str]) -> str | None:
    """The step's element name in Clark notation ({namespace}local)."""
    if step["wild"]:
        return etree.QName(step["wild_ns"] or None, step["wild"]).text
    if step["q"]:
        return etree.QName(step["q_ns"] or None, step["q"]).text
    namespace = namespaces.get(step["prefix"]) if step["prefix"] else None
    if step["prefix"] and namespace is None:
        return None
    return etree.QName(namespace, step["local"]).text


def _child(root: etree._Element, parent: etree._Element | None, tag: str, n: int) -> etree._Element | None:
    """The n-th element named tag under parent; the first step names the root itself."""
    candidates = [root] if parent is None else parent.iterchildren(tag)
    for count, element in enumerate(candidates, start=1):
        if element.tag == tag and count == n:
            return element
    return None
