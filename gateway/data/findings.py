"""Findings: what every check says about a flow or an invoice.

Every stage (admissibility, XSD, business rules, directory) speaks the same small record, so the
report, the CLI's JSON and the logs all show a finding the same way. A stage keeps at most LIMIT findings of a
document (cap): one with 400,000 schema errors would otherwise make a report, rows and log lines of hundreds
of megabytes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass

LIMIT = 200  # findings of one stage kept on one document; the rest are counted, rule by rule


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


def cap(findings: Iterable[Finding], limit: int = LIMIT) -> list[Finding]:
    """The first `limit` findings of each stage, in order, then, for each rule some findings of which were left
    out, one finding of that rule saying how many: as severe as the worst of them, so the verdict and the rules
    that made it stay the same. Consumes findings lazily: those left out are never held."""
    kept: list[Finding] = []
    per_stage: Counter[str] = Counter()
    left_out: dict[tuple[str, str], tuple[int, str]] = {}  # (stage, rule): (count, worst severity)
    for finding in findings:
        if per_stage[finding.stage] < limit:
            per_stage[finding.stage] += 1
            kept.append(finding)
            continue
        count, severity = left_out.get((finding.stage, finding.rule), (0, finding.severity))
        left_out[finding.stage, finding.rule] = (count + 1, "fatal" if finding.fatal else severity)
    return kept + [Finding(stage, rule, f"... and {count:,} more findings of rule {rule}, not listed: at most "
                                        f"{limit} findings of each check are kept", severity)
                   for (stage, rule), (count, severity) in left_out.items()]


def dumps(findings: Iterable[Finding]) -> str:
    return json.dumps([f.to_dict() for f in findings], ensure_ascii=False)


def loads(text: str) -> list[Finding]:
    return [Finding(**d) for d in json.loads(text or "[]")]
