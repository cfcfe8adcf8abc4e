"""What the rules stage says about one document: findings, and the packs that judged it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.data.findings import Finding, any_fatal
from gateway.validate.rules.packs import PackRef

STAGE = "rules"
VALIDATOR_ERROR = "VALIDATOR-ERROR"


@dataclass(frozen=True)
class RulesVerdict:
    """Findings of stage "rules"; only fatal ones make the document invalid."""

    findings: tuple[Finding, ...]
    packs: tuple[PackRef, ...] = ()
    profile: str | None = None  # the profile applied (auto resolves to a fixed one)
    spec_id: str | None = None

    @property
    def valid(self) -> bool:
        return not any_fatal(self.findings)

    @property
    def fired(self) -> list[str]:
        """Rule ids of the failed asserts and refusals, each once, in order."""
        return list(dict.fromkeys(f.rule for f in self.findings))

    def describe(self) -> dict[str, Any]:
        """The verdict's provenance, as events, logs and the CLI's JSON show it."""
        return {"profile": self.profile, "spec_id": self.spec_id,
                "packs": [vars(p) for p in self.packs], "fired": self.fired}


def validator_error(message: str, packs: tuple[PackRef, ...] = (), **context: Any) -> RulesVerdict:
    """A verdict for a document the validator could not judge: invalid, never valid by default."""
    finding = Finding(stage=STAGE, rule=VALIDATOR_ERROR, message=f"Validator error: {message}")
    return RulesVerdict(findings=(finding,), packs=packs, **context)
