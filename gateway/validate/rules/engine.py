"""The rules stage inside one process: packs compiled once with Saxon, warmed up, run on documents.

Saxon is the only engine here that runs the official XSLT 2.0 stylesheets, and it holds the GIL during a
transform, so the gateway runs one Engine per validator process (gateway.validate.rules.pool). Never
create one in a process that forks afterwards: a Saxon processor inherited through fork() and used from
a new thread crashes the child.

Saxon reads the document from a scratch file rather than from a Python string, so it sees the exact
bytes (any declared encoding, BOM) and judges the file as the official validators would; the lxml tree
parsed alongside serves to read the specification identifier and to turn locations into line numbers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from itertools import chain
from pathlib import Path

from lxml import etree
from saxonche import PySaxonApiError, PySaxonProcessor, PyXsltExecutable

from gateway.data.findings import Finding, cap
from gateway.validate import safexml
from gateway.validate.extract import NAMESPACES
from gateway.validate.rules import svrl
from gateway.validate.rules.catalog import catalog
from gateway.validate.rules.location import line_of
from gateway.validate.rules.packs import Pack
from gateway.validate.rules.selection import Choice, choose, spec_id
from gateway.validate.rules.verdict import STAGE, RulesVerdict, validator_error

PACK_MISSING = "RULES-PACK-MISSING"
_PREFIXES = {  # prefixes a stylesheet may use in its locations, besides the document's own
    **NAMESPACES,
    "ubl": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
}


class Engine:
    """Packs compiled on first use, and the scratch file documents are handed to Saxon through."""

    def __init__(self, packs: Iterable[Pack], scratch: Path) -> None:
        self._saxon = PySaxonProcessor(license=False)
        self._compiler = self._saxon.new_xslt30_processor()
        self._packs = {pack.name: pack for pack in packs}
        self._compiled: dict[str, PyXsltExecutable] = {}
        self._document = scratch / f"document-{os.getpid()}.xml"
        # one file rewritten in place: creating and unlinking one per document costs more than Saxon's reading it
        self._fd = os.open(self._document, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

    def warm_up(self, names: Iterable[str] | None = None) -> None:
        """Compile and warm up the named packs (all by default) now rather than on a document's time."""
        for name in self._packs if names is None else names:
            self._executable(self._packs[name])

    def _executable(self, pack: Pack) -> PyXsltExecutable:
        """The pack compiled once, then run on its family's sample: Saxon's first transform is 3-20 times
        slower than the next ones."""
        executable = self._compiled.get(pack.name)
        if executable is None:
            executable = self._compiler.compile_stylesheet(stylesheet_file=str(pack.path))
            executable.transform_to_string(source_file=str(catalog().families[pack.syntax].warmup))
            self._compiled[pack.name] = executable
        return executable

    def check(self, content: bytes, syntax: str, profile: str) -> RulesVerdict:
        """Judge a document (already admitted: no DTD) of a known syntax under profile."""
        try:
            root = safexml.parse(content)
        except safexml.RefusedXML as refused:
            return validator_error(f"the document cannot be parsed: {refused.message}")
        family = catalog().family_of(syntax)
        declared = spec_id(root, family)
        choice = Choice(profile, family.roles) if family.roles else choose(profile, declared)
        if choice.refusal is not None:
            return RulesVerdict((choice.refusal,), profile=choice.profile, spec_id=declared)
        packs = sorted((p for p in self._packs.values() if p.syntax == family.name and p.role in choice.roles),
                       key=lambda pack: choice.roles.index(pack.role))
        refs = tuple(pack.ref for pack in packs)
        try:
            asserts = self._run(packs, content)
        except PySaxonApiError as error:
            message = " ".join(str(error).split())[:500]
            return validator_error(f"a rule pack stopped on this document: {message}", refs,
                                   profile=choice.profile, spec_id=declared)
        findings = cap(chain(_missing(choice.roles, {p.role for p in packs}, family.name),
                             (_finding(failed, root) for failed in asserts)))
        return RulesVerdict(tuple(findings), refs, profile=choice.profile, spec_id=declared)

    def _run(self, packs: list[Pack], content: bytes) -> list[svrl.FailedAssert]:
        os.pwrite(self._fd, content, 0)
        os.ftruncate(self._fd, len(content))
        try:
            return [failed for pack in packs for failed in svrl.failed_asserts(
                self._executable(pack).transform_to_string(source_file=str(self._document)))]
        finally:
            os.ftruncate(self._fd, 0)  # no supplier's document is left lying in the scratch folder


def _finding(failed: svrl.FailedAssert, root: etree._Element) -> Finding:
    return Finding(stage=STAGE, rule=failed.rule, message=failed.message, severity=failed.severity,
                   line=line_of(root, failed.location, _PREFIXES), path=failed.location or None)


def _missing(wanted: tuple[str, ...], present: set[str], family: str) -> list[Finding]:
    """A role without a pack leaves the document unjudged: fatal, so it is never valid by omission."""
    return [Finding(stage=STAGE, rule=PACK_MISSING,
                    message=f"No {role} rule pack is installed for {family.upper()} invoices, so the invoice "
                            "cannot be judged (see `gateway rules list`)")
            for role in wanted if role not in present]
