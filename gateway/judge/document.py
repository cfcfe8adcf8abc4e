"""The verdict of a document, as a flow's documents are judged: for the worker (gateway.judge.flow) and for
`gateway validate`.

A file is first refused whole for its size (a flow's, or a lone document's) or its type (extension); a batch's
members are then judged one by one, each through admissibility, its XSD and routing data, then the business
rules on its invoice XML (the CII a Factur-X PDF embeds).
"""

from __future__ import annotations

from gateway.config import IngestSettings
from gateway.data.findings import Finding
from gateway.validate.contents import ArchiveLimits, Member, check_member, is_batch, kind_of, type_refusal
from gateway.validate.document import Checked, Limits, size_refusal
from gateway.validate.rules import RulesStage, RulesVerdict, unjudged


def limits_of(settings: IngestSettings) -> tuple[Limits, ArchiveLimits]:
    """The limits [ingest] sets on each document and on a batch."""
    return (Limits(max_bytes=settings.max_file_bytes),
            ArchiveLimits(settings.batch_max_members, settings.batch_max_expanded_bytes, settings.batch_max_ratio,
                          max_member_bytes=settings.max_file_bytes))


def file_refusal(name: str, size: int, settings: IngestSettings) -> Finding | None:
    """The refusal of a whole file decided without reading it: larger than a flow may be, a lone document larger
    than a file may be (a batch's members are measured one by one), or not of an allowed type."""
    if size > settings.max_flow_bytes:
        return Finding(stage="admissibility", rule="IRR_TAILLE_F",
                       message=f"Flow too large: {size} bytes, more than [ingest] max_flow_bytes "
                               f"({settings.max_flow_bytes} bytes)")
    kind = kind_of(name)
    too_large = None if is_batch(kind) else size_refusal(size, limits_of(settings)[0])
    return too_large or (None if kind else type_refusal(name))


def judge_member(member: Member, limits: Limits, rules: RulesStage | None) -> tuple[Checked, RulesVerdict | None]:
    """One document's admissibility, XSD and routing data, then, if it passed them, the business rules, all in a
    validator process (RulesStage.judge); without a stage, none is judged valid."""
    if rules is not None:
        return rules.judge(member, limits)
    checked = check_member(member, limits)
    return checked, unjudged(checked, "the rules stage is not running")
