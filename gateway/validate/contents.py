"""What a flow carries: one invoice (XML or Factur-X PDF) or a batch of them (.zip, .tar.gz).

The file's extension says what it must be (the domain's allowed kinds); its content must then be
that. Members are produced one at a time, each judged on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from gateway.data.findings import Finding
from gateway.validate.archive import ArchiveLimits, ArchiveRefused, tar_members, zip_members
from gateway.validate.document import Checked, Guard, Limits, check_document
from gateway.validate.pdf import PdfRefused, embedded_xml

_KINDS = {".xml": "xml", ".pdf": "pdf", ".zip": "zip", ".tar.gz": "tar.gz", ".tgz": "tar.gz"}
_ARCHIVES: dict[str, Callable[[Path, ArchiveLimits], Iterator[tuple[str, bytes]]]] = {
    "zip": zip_members, "tar.gz": tar_members}


def kind_of(name: str) -> str | None:
    """xml, pdf, zip or tar.gz by the file name's extension; None for any other name."""
    lower = name.lower()
    return next((kind for ext, kind in _KINDS.items() if lower.endswith(ext)), None)


def is_batch(kind: str | None) -> TypeGuard[str]:
    return kind in _ARCHIVES


def type_refusal(name: str, what: str = "file") -> Finding:
    return Finding(stage="admissibility", rule="IRR_TYPE_F",
                   message=f"The {what} {name!r} is not of an allowed type (.xml, .pdf, .zip, .tar.gz)")


@dataclass(frozen=True)
class Member:
    name: str
    content: bytes  # as delivered: the XML, or the Factur-X PDF


def members(path: Path, name: str, limits: ArchiveLimits) -> Iterator[Member]:
    """The documents a flow file carries; raises ArchiveRefused when a batch cannot be opened safely."""
    kind = kind_of(name)
    if not is_batch(kind):
        yield Member(name, path.read_bytes())
        return
    for member_name, content in _ARCHIVES[kind](path, limits):
        yield Member(member_name, content)


def check_member(member: Member, limits: Limits, guard: Guard | None = None) -> Checked:
    """Admissibility, XSD and routing data of one document, whichever kind it is (guard: check_document's)."""
    kind = kind_of(member.name)
    if kind == "xml":
        return check_document(member.content, limits, guard)
    if kind == "pdf":
        return _check_pdf(member.content, limits, guard)
    return Checked(syntax=None, findings=[type_refusal(member.name, "archive member")], data=None)


def _check_pdf(pdf: bytes, limits: Limits, guard: Guard | None) -> Checked:
    try:
        found = embedded_xml(pdf)
    except PdfRefused as exc:
        return Checked(None, [Finding(stage="admissibility", rule=exc.rule, message=str(exc))], None)
    if found is None:
        return Checked(None, [Finding(stage="admissibility", rule="FX-NO-XML",
                                      message="The PDF carries no embedded invoice XML (factur-x.xml): "
                                              "a Factur-X flow must embed its CII invoice")], None)
    checked = check_document(found[1], limits, guard)
    if checked.syntax not in (None, "cii"):
        checked.findings.append(Finding(stage="admissibility", rule="FX-NOT-CII",
                                        message=f"The XML embedded in the PDF ({found[0]}) is {checked.syntax}; "
                                                "Factur-X embeds a UN/CEFACT CII invoice"))
    return checked


__all__ = ["ArchiveLimits", "ArchiveRefused", "Member", "check_member", "is_batch", "kind_of", "members",
           "type_refusal"]
