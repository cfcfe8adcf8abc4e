"""Findings: what every check says about a flow or an invoice.

Every stage (admissibility, XSD, business rules, directory) speaks the same small record, so the
report, the CLI's JSON and the logs all show a finding the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Iterable


@dataclass(frozen=True)
class Finding:
    stage: str  # admissibility | xsd | rules | directory | flow
    rule: str  # rule id or code: IRR_VIDE_F, XSD, BR-CO-15, DIR-STRUCTURE-UNKNOWN...
    message: str
    severity: str = "fatal"  # fatal | warning: only fatal findings reject
    line: int | None = None
    path: str | None = None

    @property
    def fatal(self) -> bool:
        return self.severity == "fatal"

    def to_dict(self) -> dict:
        return asdict(self)


def any_fatal(findings: Iterable[Finding]) -> bool:
    return any(f.fatal for f in findings)


def dumps(findings: Iterable[Finding]) -> str:
    return json.dumps([f.to_dict() for f in findings], ensure_ascii=False)


def loads(text: str) -> list[Finding]:
    return [Finding(**d) for d in json.loads(text or "[]")]
