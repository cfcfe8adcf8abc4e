"""The rules stage as the pipeline and the CLI use it: size guards, then a validator process (and, for a
recipient's CDAR, the reform's XSD and rules where installed: gateway.validate.rules.cdar).

A worker's documents are judged whole in a validator process (RulesStage.judge): admissibility, XSD and routing
data, then the rules, so that the worker's own process only waits for them, and several of its threads keep
the validators busy.

The guards are decided on the raw bytes before anything parses the document: Saxon's time and memory grow
with the elements of the document (4,400 elements, a 6,100-line invoice, cost it 1.2 s and 450 MB), whatever
its lines (a whole invoice may be written on one), so a document with more elements or bytes than the limits
is refused with its own rule id instead of being allowed to exhaust a validator's memory. The time budget
(gateway.validate.rules.pool) bounds the rest. The XSD check is held to the same guards (gateway.judge.document):
libxml2 keeps every schema error, one or more for each element or attribute, about 800 bytes each, so an
invoice of 200,000 unknown attributes would cost it gigabytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from gateway.config import ValidateSettings
from gateway.data.findings import Finding
from gateway.ops.log import log
from gateway.validate.contents import Member, check_member, kind_of
from gateway.validate.document import Checked, Limits
from gateway.validate.pdf import embedded_xml
from gateway.validate.rules import cdar
from gateway.validate.rules.catalog import catalog
from gateway.validate.rules.cdar import CdarArtefacts
from gateway.validate.rules.packs import Pack, inventory, packs_dir
from gateway.validate.rules.pool import ValidatorPool
from gateway.validate.rules.selection import profiles, roles
from gateway.validate.rules.verdict import STAGE, RulesVerdict, validator_error

if TYPE_CHECKING:
    from gateway.validate.rules.engine import Engine

TOO_LARGE = "RULES-TOO-LARGE"
EN16931 = "en16931"


@dataclass(frozen=True)
class Guards:
    """Largest document, in bytes, elements and attributes, the rules stage accepts."""

    max_bytes: int
    max_elements: int
    max_attributes: int

    def refusal(self, content: bytes) -> Finding | None:
        """RULES-TOO-LARGE for a document past a limit, naming the one it passed; elements and attributes are
        counted without parsing."""
        if len(content) > self.max_bytes:
            over = f"{len(content):,} bytes, past [validate] max_bytes = {self.max_bytes:,}"
        elif (elements := count_elements(content)) > self.max_elements:
            over = f"{elements:,} elements, past [validate] max_elements = {self.max_elements:,}"
        elif (attributes := count_attributes(content)) > self.max_attributes:
            over = f"{attributes:,} attributes, past [validate] max_attributes = {self.max_attributes:,}"
        else:
            return None
        return Finding(stage=STAGE, rule=TOO_LARGE, message=f"Invoice too large for the business rules: {over}; "
                                                            "split it into several invoices")


_UTF16 = {b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16", b"<\x00": "utf-16-le", b"\x00<": "utf-16-be"}


def count_elements(content: bytes) -> int:
    """The start tags of an XML document (`<` not followed by `/`, `?` or `!`), without parsing it; a `<` in a
    comment or CDATA section counts too, which only errs on the safe side. UTF-16 is transcoded to UTF-8 first."""
    content = _utf8(content)
    return content.count(b"<") - content.count(b"</") - content.count(b"<?") - content.count(b"<!")


def count_attributes(content: bytes) -> int:
    """The attributes of an XML document, without parsing it: its `=` signs, one in each attribute (and namespace
    declaration); one in a text counts too, which only errs on the safe side."""
    return _utf8(content).count(b"=")


def _utf8(content: bytes) -> bytes:
    """UTF-16 transcoded to UTF-8, so that markup is counted byte by byte; anything else as it is."""
    encoding = _UTF16.get(content[:2])
    return content.decode(encoding, errors="replace").encode() if encoding else content


# Neither the CDAR XSD nor BR-FR-CDV: a stage built without them judges CDARs by the gateway's reading alone.
_NO_CDAR = CdarArtefacts(None, rules=False)


class RulesStage:
    """Judges documents under one profile with a pool of validator processes, and recipients' CDAR messages
    with what is installed of the reform's artefacts; thread-safe."""

    def __init__(self, pool: ValidatorPool, profile: str, guards: Guards,
                 cdar: CdarArtefacts = _NO_CDAR) -> None:
        self.pool = pool
        self.profile = profile
        self.guards = guards
        self.cdar = cdar

    @classmethod
    def from_settings(cls, settings: ValidateSettings, profile: str | None = None,
                      processes: int | None = None) -> RulesStage:
        """A stage (not started) over the usable packs the profile may need."""
        profile = profile or settings.profile
        if profile not in profiles():
            raise ValueError(f"unknown rules profile {profile!r}; known: {', '.join(profiles())}")
        packs = usable_packs(settings, roles(profile) | cdar.ROLES)
        stylesheets = [pack for pack in packs if pack.kind == "xslt"]
        preload = [pack.name for pack in packs if pack.role == EN16931]  # what nearly every invoice needs
        pool = ValidatorPool(stylesheets, processes or settings.pool_size, settings.time_budget, preload=preload)
        guards = Guards(settings.max_bytes, settings.max_elements, settings.max_attributes)
        return cls(pool, profile, guards, CdarArtefacts.among(packs))

    def check(self, content: bytes, syntax: str) -> RulesVerdict:
        """The verdict on a document that passed admissibility and its XSD."""
        refusal = self.guards.refusal(content)
        if refusal is not None:
            return RulesVerdict((refusal,), profile=self.profile)
        return self.pool.check(content, syntax, self.profile)

    def judge(self, member: Member, limits: Limits) -> tuple[Checked, RulesVerdict | None]:
        """A document's admissibility, XSD and routing data, then, if it passed them, the rules, in a validator
        process; that process lost (time budget, death), the checks are made here and the rules' verdict is
        VALIDATOR-ERROR."""
        judged = self.pool.run(judge_document, (member, limits, self.guards, self.profile), failed=_Lost)
        if not isinstance(judged, _Lost):
            return judged
        checked = check_member(member, limits, self.guards.refusal)
        return checked, unjudged(checked, judged, self.profile)

    def check_cdar(self, root: etree._Element, content: bytes) -> list[Finding]:
        """The findings of the installed CDAR XSD and BR-FR-CDV on a recipient's CDAR (none installed: none); one
        past the size guards is refused before the XSD, as an invoice is."""
        refusal = self.guards.refusal(content) if self.cdar.schema else None
        return [refusal] if refusal else self.cdar.check(root, lambda: self.check(content, cdar.SYNTAX))

    def start(self) -> None:
        self.pool.start()

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> RulesStage:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def unjudged(checked: Checked, reason: str, profile: str | None = None) -> RulesVerdict | None:
    """The rules' verdict on a document they could not judge (no stage running, its validator lost): VALIDATOR-ERROR
    for one that passed admissibility and its XSD, never valid; None for any other, which the rules never see."""
    if not checked.valid or checked.syntax is None:
        return None
    return validator_error(reason, profile=profile)


def judge_document(engine: Engine, member: Member, limits: Limits, guards: Guards,
                   profile: str) -> tuple[Checked, RulesVerdict | None]:
    """RulesStage.judge's task, in a validator process: a document past the rules' size guards is refused before
    its XSD, and the rules judge the invoice XML (the CII a Factur-X PDF embeds) of a document that passed it (and so
    the guards, which check_member applied to that same XML)."""
    checked = check_member(member, limits, guards.refusal)
    if not checked.valid or checked.syntax is None:
        return checked, None
    xml = member.content
    if kind_of(member.name) == "pdf":
        found = embedded_xml(member.content)
        xml = found[1] if found else b""  # found: the PDF passed its checks
    return checked, engine.check(xml, checked.syntax, profile)


class _Lost(str):
    """Why no validator process judged a document."""


def usable_packs(settings: ValidateSettings, wanted: set[str]) -> list[Pack]:
    """The packs playing the wanted roles; the unusable ones are logged, and judged as missing (an optional pack
    not installed is no fault: its role says so, see gateway.validate.rules.cdar)."""
    found = inventory(packs_dir(settings.packs_dir))
    for name, problem in found.problems.items():
        if not (name in found.missing and catalog().packs[name].optional):
            log.warning("rule_pack_unusable", pack=name, problem=problem)
    return found.for_roles(wanted)
