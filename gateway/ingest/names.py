"""The names files arrive under: recorded as text whatever their bytes, refused when they cannot be shown as sent.

The SFTP server refuses such names at upload (`[sftp] file_name_pattern`), but a zone written by sshd or by
hand accepts any name Linux does. Those are still taken, so nothing is left in in/ forever, and their flow
is refused with FLOW-NAME-INVALID, which says why, rather than processed under a name its sender would
not recognise in the report.
"""

from __future__ import annotations

import re
import unicodedata

from gateway.findings import Finding

_UNDECODABLE = re.compile("[\ud800-\udfff]")  # os.fsdecode's escapes of the bytes that were not UTF-8
# Marks and overrides that reorder what follows: "facture\u202elmx.exe" shows as "factureexe.xml".
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def recordable(name: str) -> str:
    """The name as text a database and a report can hold: each byte that was not UTF-8 becomes U+FFFD."""
    return _UNDECODABLE.sub("\ufffd", name)


def name_refusal(name: str) -> Finding | None:
    """FLOW-NAME-INVALID for a recorded name with undecodable bytes, control or bidirectional characters."""
    reasons = [reason for reason, found in (
        ("bytes that are not UTF-8", "\ufffd" in name),
        ("control characters", any(unicodedata.category(c) == "Cc" for c in name)),
        ("bidirectional controls, which disguise its extension", _BIDI.search(name) is not None),
    ) if found]
    if not reasons:
        return None
    return Finding(stage="admissibility", rule="FLOW-NAME-INVALID",
                   message=f"The file name {name!r} has {' and '.join(reasons)}: rename the file and send it again")
