"""A rule of the platform: a small function marked with its rule id, returning the supplier's message when an
invoice breaks it, else None. The routing rules (gateway.judge.routing) and the platform controls
(gateway.judge.controls) are made of them, each run in order by `run_rules`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.data.findings import Finding

__all__ = ["Check", "Rule", "rule", "run_rules"]

Check = Callable[[Any], str | None]  # a rule reads its own context: the routed invoice, or the deposit


@dataclass(frozen=True)
class Rule:
    """A control: `check` returns the message for the supplier, or None when it holds."""

    rule_id: str
    check: Check
    halts: bool = False

    def __call__(self, context: Any) -> str | None:
        return self.check(context)


def rule(rule_id: str, *, halts: bool = False) -> Callable[[Check], Rule]:
    """Mark a check with its rule id; `halts` stops the rules after it when it fails."""

    def mark(check: Check) -> Rule:
        return Rule(rule_id, check, halts)

    return mark


def run_rules(rules: tuple[Rule, ...], context: object, stage: str) -> list[Finding]:
    """Every rule's finding in order, up to the first halting rule that fails."""
    findings: list[Finding] = []
    for check in rules:
        message = check(context)
        if message is not None:
            findings.append(Finding(stage, check.rule_id, message))
            if check.halts:
                break
    return findings
