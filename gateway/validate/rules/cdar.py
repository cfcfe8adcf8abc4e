"""A recipient's CDAR judged by the reform's official artefacts before it is applied.

FNFE-MPE publishes the CDAR D22B XSD and the BR-FR-CDV Schematron that every platform's lifecycle messages
must pass. No package ships them, so an operator installs the set (`gateway rules install FOLDER|ZIP`) as two
packs: cdar-d22b, the XSD, and br-fr-cdv, the fatal rules, run in the validator processes like the EN 16931
packs. A CDAR is checked against the XSD, then against BR-FR-CDV, each where installed; its fatal findings
refuse it, reported like an invoice's. Without BR-FR-CDV (said once at start) the XSD alone judges; without
either, the gateway's own reading of the message does. The gateway's own CDARs are checked against both in
its tests (tests/test_cdar_conformance.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from gateway.data.findings import Finding, any_fatal
from gateway.ops.log import log
from gateway.validate import xsd
from gateway.validate.rules.packs import Pack
from gateway.validate.rules.verdict import RulesVerdict

SYNTAX = "cdar"  # its family in gateway/schemas/rulepacks.toml
SCHEMA_ROLE, RULES_ROLE = "cdar-xsd", "br-fr-cdv"
ROLES = frozenset({SCHEMA_ROLE, RULES_ROLE})


@dataclass(frozen=True)
class CdarArtefacts:
    """What is installed to judge a CDAR: the XSD's path, and whether BR-FR-CDV runs in the validators."""

    schema: Path | None
    rules: bool

    @classmethod
    def among(cls, packs: Iterable[Pack]) -> CdarArtefacts:
        """The artefacts among the usable packs, said at start when BR-FR-CDV is not one of them."""
        packs = list(packs)
        found = cls(next((p.path for p in packs if p.role == SCHEMA_ROLE), None),
                    any(p.role == RULES_ROLE for p in packs))
        if not found.rules:
            log.info("br_fr_cdv_not_installed", install="gateway rules install FOLDER|ZIP (FNFE-MPE france-rfe-cdar)",
                     cdar_checked_by="the CDAR XSD alone" if found.schema else
                     "the gateway's reading alone: the CDAR XSD is not installed either")
        return found

    def check(self, root: etree._Element, judge: Callable[[], RulesVerdict]) -> list[Finding]:
        """The XSD's findings on a CDAR, then, if it passed, BR-FR-CDV's (judge runs them)."""
        findings = xsd.validate_against(root, self.schema) if self.schema else []
        if self.rules and not any_fatal(findings):
            findings += judge().findings
        return findings
