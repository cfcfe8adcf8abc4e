"""File names: the one rule every channel applies to the name a file arrives under, and a batch to its members'.

The reform's rule (general document §3.4.2): at most 256 characters, none of `% $ ! & / \\ : ; « » # @`; a name
breaking it is refused with IRR_NOM_F, its own reason code. The gateway also refuses a name it could not show
as sent: bytes that are not UTF-8, control or bidirectional characters (FLOW-NAME-INVALID); and, as a flow's
name, one that marks a file still being written (a dot-name, *.part...: gateway.zones), which the folder
channels never take. The SFTP server and the HTTP deposits refuse a name at once, saying which rule; a zone
written by sshd or by hand, and a pull, accept any name Linux does: those files are still taken, so nothing is
left in in/ forever, and their flow is refused with the rule in its report.
"""

from __future__ import annotations

import re
import unicodedata

from gateway.data.findings import Finding
from gateway.zones import is_final_name

MAX_LENGTH = 256
FORBIDDEN = "%$!&/\\:;«»#@"
REFORM_RULE = "IRR_NOM_F"
SHOWABLE_RULE = "FLOW-NAME-INVALID"

_UNDECODABLE = re.compile("[\ud800-\udfff]")  # os.fsdecode's escapes of the bytes that were not UTF-8
# Marks and overrides that reorder what follows: "facture\u202elmx.exe" shows as "factureexe.xml".
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def recordable(name: str) -> str:
    """The name as text a database and a report can hold: each byte that was not UTF-8 becomes U+FFFD."""
    return _UNDECODABLE.sub("\ufffd", name)


def name_refusal(name: str) -> Finding | None:
    """The refusal of a (recorded) file name, or of a part of an archive member's path: IRR_NOM_F if it breaks the
    reform's rule, else FLOW-NAME-INVALID if it cannot be shown as sent; the message gives every reason found."""
    forbidden = sorted(set(name) & set(FORBIDDEN), key=FORBIDDEN.index)
    reform = [reason for reason, found in (
        (f"{len(name)} characters, more than the {MAX_LENGTH} a file name may have", len(name) > MAX_LENGTH),
        (f"{' '.join(forbidden)} (a file name may hold none of {' '.join(FORBIDDEN)})", forbidden),
    ) if found]
    showable = [reason for reason, found in (
        ("bytes that are not UTF-8", "\ufffd" in name),
        ("control characters", any(unicodedata.category(c) == "Cc" for c in name)),
        ("bidirectional controls, which disguise its extension", _BIDI.search(name) is not None),
    ) if found]
    if not reform and not showable:
        return None
    return Finding(stage="admissibility", rule=REFORM_RULE if reform else SHOWABLE_RULE,
                   message=f"The file name {name!r} has {' and '.join(reform + showable)}: "
                           "rename the file and send it again")


def flow_name_refusal(name: str) -> Finding | None:
    """The refusal of the name a flow arrives under: name_refusal, else FLOW-NAME-INVALID for a temporary name."""
    refusal = name_refusal(name)
    if refusal is not None or is_final_name(name):
        return refusal
    return Finding(stage="admissibility", rule=SHOWABLE_RULE,
                   message=f"The file name {name!r} marks a file still being written (a leading dot, or .part, .tmp, "
                           ".filepart at its end): give the file its final name and send it again")


def told(finding: Finding) -> str:
    """A refusal as one line for a client that is answered at once (SFTP, HTTP): its rule, then its message."""
    return f"{finding.rule}: {finding.message}"
