"""Documents and packs for the rules tests and the validation benchmark."""

from __future__ import annotations

import itertools
import re

import pytest

from gateway.validate.rules import Pack, inventory, packs_dir
from tests.harness import SAMPLES

UBL_OK = SAMPLES / "flows" / "ubl-invoice-ok.xml"
CII_OK = SAMPLES / "flows" / "cii-invoice-ok.xml"
_SPEC_ID = re.compile(rb"(<cbc:CustomizationID>|<ram:GuidelineSpecifiedDocumentContextParameter>\s*<ram:ID>)[^<]*")
_LINE_ID = re.compile(rb"(<cac:InvoiceLine>\s*<cbc:ID>)\d+")  # line ids stay unique, as in a real invoice
_LINES = re.compile(rb"\n  <cac:InvoiceLine>.*</cac:InvoiceLine>", re.DOTALL)


def with_spec_id(content: bytes, spec_id: str) -> bytes:
    """The same document declaring another specification identifier (BT-24)."""
    changed, count = _SPEC_ID.subn(lambda m: m.group(1) + spec_id.encode(), content, count=1)
    assert count == 1, "no specification identifier to replace"
    return changed


def big_invoice(lines: int) -> bytes:
    """The UBL sample with its invoice lines repeated until the file has at least `lines` lines.

    Totals are not fixed: the document is for measuring time and memory, and for keeping a validator busy.
    """
    content = UBL_OK.read_bytes()
    block = _LINES.search(content)
    assert block is not None
    repeats = max(1, -(-(lines - content.count(b"\n")) // block.group().count(b"\n")) + 1)
    numbers = itertools.count(1)
    repeated = _LINE_ID.sub(lambda m: b"%s%d" % (m.group(1), next(numbers)), block.group() * repeats)
    return content[: block.start()] + repeated + content[block.end():]


def installed(*names: str) -> list[Pack]:
    """The named packs as installed here; the test is skipped, saying why, when one is missing."""
    found = inventory(packs_dir())
    missing = {name: found.problems.get(name, "unknown") for name in names if name not in found.packs}
    if missing:
        pytest.skip(f"rule packs not usable here: {missing} (`make install` runs `gateway rules fetch`)")
    return [found.packs[name] for name in names]
