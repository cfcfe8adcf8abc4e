"""Which packs judge a document: by its syntax family and the specification identifier it declares.

A profile names roles (en16931, br-fr, extended-ctc-fr); the `auto` profile picks one from the
document's specification identifier (UBL cbc:CustomizationID, CII GuidelineSpecifiedDocumentContext-
Parameter/ram:ID) using the table of gateway/schemas/rulepacks.toml, and refuses the Factur-X profiles that are
not EN 16931 invoices. The table is read top to bottom, first match wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from lxml import etree

from gateway.data.findings import Finding
from gateway.validate.extract import NAMESPACES
from gateway.validate.rules.catalog import Family, catalog
from gateway.validate.rules.verdict import STAGE

AUTO = "auto"


@dataclass(frozen=True)
class Choice:
    """The profile a document is judged under, its roles, or the refusal that spares running any pack."""

    profile: str
    roles: tuple[str, ...] = ()
    refusal: Finding | None = None


def profiles() -> list[str]:
    """Every profile name a caller may ask for."""
    return [AUTO, *catalog().profiles]


def roles(profile: str) -> set[str]:
    """Every role a profile may call on: for auto, those of every profile it may pick."""
    named = catalog().profiles
    return set().union(*named.values()) if profile == AUTO else set(named[profile])


def choose(profile: str, spec_id: str | None) -> Choice:
    """The roles for a document declaring spec_id, under profile (auto or a fixed one)."""
    if profile != AUTO:
        return Choice(profile, catalog().profiles[profile])
    declared = " ".join((spec_id or "").split())
    for entry in catalog().declared:
        if entry.matches(declared):
            if entry.profile is None:
                return Choice(AUTO, refusal=Finding(stage=STAGE, rule=str(entry.rule), message=str(entry.refuse)))
            return Choice(entry.profile, catalog().profiles[entry.profile])
    default = catalog().default_profile
    return Choice(default, catalog().profiles[default])


def spec_id(root: etree._Element, family: Family) -> str | None:
    """The specification identifier the document declares, if any."""
    value = _spec_xpath(family.spec_id)(root).strip()
    return value or None


@cache
def _spec_xpath(path: str) -> etree.XPath:
    return etree.XPath(f"string(({path})[1])", namespaces=NAMESPACES)
