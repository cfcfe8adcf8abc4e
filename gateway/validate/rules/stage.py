"""The rules stage as the pipeline and the CLI use it: size guards, then a validator process.

The guards are decided on the raw bytes before anything parses the document: Saxon's time and memory grow
with the elements of the document (4,400 elements, a 6,100-line invoice, cost it 1.2 s and 450 MB), whatever
its lines (a whole invoice may be written on one), so a document with more elements or bytes than the limits
is refused with its own rule id instead of being allowed to exhaust a validator's memory. The time budget
(gateway.validate.rules.pool) bounds the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import ValidateSettings
from gateway.findings import Finding
from gateway.log import log
from gateway.validate.document import Checked
from gateway.validate.rules.packs import Pack, inventory, packs_dir
from gateway.validate.rules.pool import ValidatorPool
from gateway.validate.rules.selection import profiles, roles
from gateway.validate.rules.verdict import STAGE, RulesVerdict, validator_error

TOO_LARGE = "RULES-TOO-LARGE"
EN16931 = "en16931"


@dataclass(frozen=True)
class Guards:
    """Largest document, in bytes and in elements, the rules stage accepts."""

    max_bytes: int
    max_elements: int

    def refusal(self, content: bytes) -> Finding | None:
        """RULES-TOO-LARGE for a document past either limit, naming the one it passed; elements are counted
        without parsing."""
        if len(content) > self.max_bytes:
            over = f"{len(content):,} bytes, past [validate] max_bytes = {self.max_bytes:,}"
        elif (elements := count_elements(content)) > self.max_elements:
            over = f"{elements:,} elements, past [validate] max_elements = {self.max_elements:,}"
        else:
            return None
        return Finding(stage=STAGE, rule=TOO_LARGE, message=f"Invoice too large for the business rules: {over}; "
                                                            "split it into several invoices")


_UTF16 = {b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16", b"<\x00": "utf-16-le", b"\x00<": "utf-16-be"}


def count_elements(content: bytes) -> int:
    """The start tags of an XML document (`<` not followed by `/`, `?` or `!`), without parsing it; a `<` in a
    comment or CDATA section counts too, which only errs on the safe side. UTF-16 is transcoded to UTF-8 first."""
    encoding = _UTF16.get(content[:2])
    if encoding:
        content = content.decode(encoding, errors="replace").encode()
    return content.count(b"<") - content.count(b"</") - content.count(b"<?") - content.count(b"<!")


class RulesStage:
    """Judges documents under one profile with a pool of validator processes; thread-safe."""

    def __init__(self, pool: ValidatorPool, profile: str, guards: Guards) -> None:
        self.pool = pool
        self.profile = profile
        self.guards = guards

    @classmethod
    def from_settings(cls, settings: ValidateSettings, profile: str | None = None,
                      processes: int | None = None) -> RulesStage:
        """A stage (not started) over the usable packs the profile may need."""
        profile = profile or settings.profile
        if profile not in profiles():
            raise ValueError(f"unknown rules profile {profile!r}; known: {', '.join(profiles())}")
        packs = usable_packs(settings, roles(profile))
        preload = [pack.name for pack in packs if pack.role == EN16931]  # what nearly every invoice needs
        pool = ValidatorPool(packs, processes or settings.pool_size, settings.time_budget, preload=preload)
        return cls(pool, profile, Guards(settings.max_bytes, settings.max_elements))

    def check(self, content: bytes, syntax: str) -> RulesVerdict:
        """The verdict on a document that passed admissibility and its XSD."""
        refusal = self.guards.refusal(content)
        if refusal is not None:
            return RulesVerdict((refusal,), profile=self.profile)
        return self.pool.check(content, syntax, self.profile)

    def start(self) -> None:
        self.pool.start()

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> RulesStage:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def after_xsd(stage: RulesStage | None, content: bytes, checked: Checked) -> RulesVerdict | None:
    """The rules verdict on a document that passed admissibility and its XSD, None for any other; without a
    stage (the gateway's is started by its runner) nothing is judged valid."""
    if not checked.valid or checked.syntax is None:
        return None
    if stage is None:
        return validator_error("the rules stage is not running")
    return stage.check(content, checked.syntax)


def usable_packs(settings: ValidateSettings, wanted: set[str]) -> list[Pack]:
    """The packs playing the wanted roles; the unusable ones are logged, and judged as missing."""
    found = inventory(packs_dir(settings.packs_dir))
    for name, problem in found.problems.items():
        log.warning("rule_pack_unusable", pack=name, problem=problem)
    return found.for_roles(wanted)
